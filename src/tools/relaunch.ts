// Imported first by the entry points (src/cli/index.ts, src/action/index.ts), so that the process is
// started again with a capped young generation before the rest of the bundle loads.
import { relaunchWithSmallYoungGeneration } from './young-generation.js';

relaunchWithSmallYoungGeneration();
