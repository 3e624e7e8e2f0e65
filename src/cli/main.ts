/**
 * Entry point of the `taskyard` command: bin/taskyard.js runs the built copy, `npm run taskyard`
 * this source through tsx. The commands live in program.ts so tests and embedders can build them
 * without running them.
 */
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv);
