// The demo page the API serves at /demo: the README's React App, talking to the API on its
// own origin (relative baseUrl) as one end user holding a browser token (see token.tsx).
import { SidecarClient } from '@ckcias/sidecar-client';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from '../examples/react';
import { TokenPanel, getToken } from './token';
import './style.css';

const client = new SidecarClient({ baseUrl: '', getToken });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <TokenPanel />
    <App client={client} />
  </StrictMode>,
);
