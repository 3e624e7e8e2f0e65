/**
 * Entry point of the `taskyard` command (bin/taskyard.js, `npm run taskyard`).
 * The commands live in program.ts so tests and embedders can build them without running them.
 */
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv);
