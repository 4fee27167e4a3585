// Imported first by the entry points (src/cli/index.ts, src/action/index.ts), so that the process is
// started again with a capped young generation before any other module of the bundle runs.
import { relaunchWithSmallYoungGeneration } from './young-generation.js';

relaunchWithSmallYoungGeneration();
