import '../tools/relaunch.js'; // first: see young-generation.ts
import { run } from './main.js';
import { removeStaleSecrets } from '../tools/registry-auth.js';
import { exitOnSignals } from '../tools/signals.js';

// A cancelled job (SIGINT, then SIGTERM) removes its auth files before exiting; the post step again.
exitOnSignals();
await removeStaleSecrets().catch(() => undefined);
await run();
