/**
 * Simulated time. `TASKYARD_DEMO_TIME_SCALE` stretches or shrinks every demo delay
 * (0.001 in tests, 1 for a realistic demo). Read on each call so tests can change it.
 */
export function timeScale(): number {
  const scale = Number.parseFloat(process.env.TASKYARD_DEMO_TIME_SCALE ?? '');
  return Number.isFinite(scale) && scale > 0 ? scale : 1;
}

/** Waits `ms * timeScale()`; rejects with `signal.reason` as soon as the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms * timeScale()));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
