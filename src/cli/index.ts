#!/usr/bin/env node
import '../tools/relaunch.js'; // first: see young-generation.ts
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
