// The demo page the API serves at /demo: the README's React App, talking to the API on its
// own origin (relative baseUrl).
import { SidecarClient } from '@ckcias/sidecar-client';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from '../examples/react';
import './style.css';

const client = new SidecarClient({ baseUrl: '' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App client={client} />
  </StrictMode>,
);
