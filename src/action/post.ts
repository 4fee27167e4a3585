// The action's post step entry point.
import { runPost } from './cleanup.js';

await runPost();
