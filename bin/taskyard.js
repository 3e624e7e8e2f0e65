#!/usr/bin/env node
// The `taskyard` command, from the built JavaScript in dist/ (`npm install` builds it).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('taskyard: the build is missing (dist/); run `npm run build` in the taskyard package\n');
  process.exit(2);
}
await import(main.href);
