import { defineConfig } from 'vite';

// Served by the scheduler under /console (services/scheduler/src/http/routes/console.ts).
export default defineConfig({
  base: '/console/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, target: 'es2022' },
});
