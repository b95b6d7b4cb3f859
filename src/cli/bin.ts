// Entry point when run from source (tests, `node --import tsx src/cli/bin.ts`); bin/tiergate.js runs the compiled build.
import './runtime-globals.js';
import { main } from './main.js';

await main(process.argv);
