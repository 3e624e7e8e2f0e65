/**
 * The benchmark harness's own parts, at tiny sizes (the bench itself is not part of the suite):
 * the load generator and the server under test run as processes of their own, and the figures
 * the harness derives from them are the right ones.
 */
import { describe, expect, it } from 'vitest';
import { runAutocannon, runAutocannonWindows, type LoadWindow } from '../bench/lib/autocannon.js';
import { processMemory, startChild, watchMemory } from '../bench/lib/child.js';
import { median } from '../bench/lib/stats.js';

describe('bench harness', () => {
  it('takes the median of an odd and an even count of figures', () => {
    expect(median([0.4, 0.2, 0.9])).toBe(0.4);
    expect(median([3, 1, 4, 2])).toBe(2.5);
  });

  it("reads a process's RSS and peak from the kernel", () => {
    const m = processMemory(process.pid)!;
    expect(m.rssMb).toBeGreaterThan(10);
    expect(m.peakMb).toBeGreaterThanOrEqual(m.rssMb);
    expect(processMemory(2 ** 22 + 7)).toBeNull(); // above pid_max: no such process
  });

  it('loads a server in another process from a load generator in a third, and samples the server', async () => {
    const server = startChild('peers/hello-server.ts');
    try {
      const { url } = await server.next<{ url: string }>('ready');
      expect(server.pid).not.toBe(process.pid);
      const memory = watchMemory(server.pid, 20);
      const body = JSON.stringify({ a: 1 });
      const result = await runAutocannon({ url: `${url}/hello`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: 4, amount: 300 });
      expect(result).toMatchObject({ total: 300, non2xx: 0, errors: 0 });
      expect(result.p99).toBeGreaterThan(0);
      expect(memory.stop()).toBeGreaterThan(20); // a Node process with Fastify loaded

      const windows: LoadWindow[] = [];
      const paced = await runAutocannonWindows({ url: `${url}/hello`, connections: 2, duration: 2, overallRate: 50, windowSeconds: 0.5 }, (w) => windows.push(w));
      expect(windows.length).toBeGreaterThanOrEqual(3);
      // The rate holds: about 50 a second overall (autocannon may run a window past the duration),
      // never the server's max, which is thousands a second.
      expect(paced.total).toBeGreaterThan(60);
      expect(paced.total).toBeLessThan(300);
      expect(windows.reduce((n, w) => n + w.requests, 0)).toBeLessThanOrEqual(paced.total);
    } finally {
      await server.stop();
    }
    expect(server.child.exitCode).toBe(0);
  });
});
