#!/usr/bin/env node
import '../tools/relaunch.js'; // first: see young-generation.ts
import { main } from './main.js';
import { removeStaleSecrets } from '../tools/registry-auth.js';
import { exitOnSignals } from '../tools/signals.js';

// Ctrl-C, SIGTERM and SIGHUP exit with 130, 143, 129 after removing secrets; what a SIGKILL left is removed here.
exitOnSignals();
await removeStaleSecrets().catch(() => undefined);
process.exitCode = await main(process.argv.slice(2));
