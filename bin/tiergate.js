#!/usr/bin/env node
// Runs the compiled CLI; `npm ci` builds it (the `prepare` script).
import { main } from '../dist/cli/main.js';
main(process.argv);
