import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { BUCKET_MS, seedFromLedger, series } from '../throughput';

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const css = (name: string) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';

/** Runs finished per 5 s, by outcome, since the page opened (uPlot). */
export function ThroughputChart() {
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const el = box.current!;
    const data = () => {
      const s = series();
      return [s.t, s.succeeded, s.failed, s.revoked] as uPlot.AlignedData;
    };
    const make = () =>
      new uPlot(
        {
          width: Math.max(280, el.clientWidth),
          height: 220,
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, max)] } },
          axes: [
            {
              stroke: css('--muted'),
              grid: { stroke: css('--grid') },
              ticks: { stroke: css('--grid') },
              space: 70,
              incrs: [60, 120, 300, 600],
              values: (_u, splits) => splits.map((s) => clock.format(s * 1000)),
            },
            { stroke: css('--muted'), grid: { stroke: css('--grid') }, ticks: { stroke: css('--grid') }, label: `runs per ${BUCKET_MS / 1000} s` },
          ],
          series: [
            {},
            { label: 'Succeeded', stroke: css('--ok'), width: 2, fill: css('--ok-fill') },
            { label: 'Failed', stroke: css('--bad'), width: 2 },
            { label: 'Revoked', stroke: css('--warn'), width: 2 },
          ],
        },
        data(),
        el,
      );
    let chart = make();
    let alive = true;
    void seedFromLedger().then(() => alive && chart.setData(data()));
    // Redraw each second: new counts show up and the time axis moves on.
    const timer = setInterval(() => chart.setData(data()), 1000);
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
    resize.observe(el);
    // Colours come from the theme: rebuild when it changes.
    const theme = new MutationObserver(() => {
      chart.destroy();
      chart = make();
    });
    theme.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    const media = matchMedia('(prefers-color-scheme: dark)');
    const onMedia = () => {
      chart.destroy();
      chart = make();
    };
    media.addEventListener('change', onMedia);
    return () => {
      alive = false;
      clearInterval(timer);
      resize.disconnect();
      theme.disconnect();
      media.removeEventListener('change', onMedia);
      chart.destroy();
    };
  }, []);

  return <div ref={box} class="chart" role="img" aria-label="Finished runs per 5 seconds over the last ten minutes, by outcome" />;
}
