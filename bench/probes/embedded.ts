/**
 * Embedded submit + drain against the bare SQLite ledger, interleaved (A B A B) so a busy machine
 * hits both alike: `npx tsx bench/probes/embedded.ts [tasks] [rounds]`. Add --cpu-prof through
 * `node --import tsx --cpu-prof` to see where the time goes.
 */
import { bareSqliteLedger } from '../peers/sqlite-ledger.js';
import { embeddedThroughput } from '../taskyard.js';

const tasks = Number(process.argv[2] ?? 50_000);
const rounds = Number(process.argv[3] ?? 2);
const ratios: number[] = [];
for (let i = 0; i < rounds; i++) {
  const c0 = process.cpuUsage();
  const yard = await embeddedThroughput(tasks);
  const c1 = process.cpuUsage(c0);
  const bare = bareSqliteLedger(tasks);
  const cpu = (u: NodeJS.CpuUsage) => ((u.user + u.system) / tasks).toFixed(1);
  const bareCpu = process.cpuUsage(c0);
  console.log(`  CPU µs per task: taskyard ${cpu(c1)}, bare ${cpu({ user: bareCpu.user - c1.user, system: bareCpu.system - c1.system })}`);
  ratios.push(yard.totalPerSec / bare.jobsPerSec);
  console.log(`round ${i + 1}: taskyard ${yard.totalPerSec}/s (drain ${yard.drainPerSec}/s), bare ${Math.round(bare.jobsPerSec)}/s, ratio ${(yard.totalPerSec / bare.jobsPerSec).toFixed(2)}`);
}
ratios.sort((a, b) => a - b);
console.log(`median ratio ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}`);
