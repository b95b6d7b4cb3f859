#!/usr/bin/env node
// Runs the compiled CLI; `npm ci` builds it (the `prepare` script).
// (first: what the modules below expect to find when they load)
import '../dist/src/cli/runtime-globals.js';
import { main } from '../dist/src/cli/main.js';
main(process.argv);
