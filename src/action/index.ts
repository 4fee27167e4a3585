import '../tools/relaunch.js'; // first: see young-generation.ts
import { run } from './main.js';

await run();
