import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { aliases } from '../aliases';

// `npm run demo:build` writes demo-dist/ (committed), which the API serves at /demo.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/demo/',
  plugins: [react()],
  resolve: { alias: aliases },
  build: {
    outDir: fileURLToPath(new URL('../demo-dist', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
  },
});
