// Entry point when run from source (tests, `node --import tsx src/cli/bin.ts`); bin/tiergate.js runs the compiled build.
import { main } from './main.js';

await main(process.argv);
