import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Line colours, in the order of the lines (the most used first). */
export const PALETTE = ['#2f5d8a', '#d9822b', '#1f7a3a', '#8e44ad', '#b3261e', '#16a2b8', '#6a7684', '#c0a000'];

export interface ChartLine {
  label: string;
  values: (number | null)[];
}

/**
 * A time chart (uPlot, canvas): one line per series over `x` (epoch ms), as wide as its container.
 * Rebuilt when its data changes: a dashboard's handful of lines costs nothing to draw again.
 */
export function TimeChart({ title, x, lines, value, bars = false, height = 200 }: { title: string; x: number[]; lines: ChartLine[]; value: (v: number) => string; bars?: boolean; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(280, el.clientWidth),
      height,
      series: [
        {},
        ...lines.map((l, i) => ({
          label: l.label,
          stroke: PALETTE[i % PALETTE.length],
          fill: bars ? PALETTE[i % PALETTE.length] + '55' : undefined,
          width: 2,
          points: { show: true, size: 5 },
          paths: bars ? uPlot.paths.bars!({ size: [0.6, 40] }) : undefined,
          value: (_: uPlot, v: number | null) => (v === null ? '–' : value(v)),
        })),
      ],
      // The value axis as wide as its longest label ($0.000400 needs more room than 750).
      axes: [{}, { values: (_, ticks) => ticks.map(value), size: (_, values) => 24 + 7 * Math.max(2, ...(values ?? []).map((v) => String(v).length)) }],
      scales: { y: { range: (_, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
      legend: { live: false },
    };
    const plot = new uPlot(opts, [x.map((t) => t / 1000), ...lines.map((l) => l.values)] as uPlot.AlignedData, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [x, lines, value, bars, height]);
  const points = lines.reduce((n, l) => n + l.values.filter((v) => v !== null && v !== 0).length, 0);
  return (
    <figure className="chart" data-chart={title} data-points={points}>
      <figcaption>{title}</figcaption>
      {lines.length === 0 && <p className="muted small">Nothing in this range.</p>}
      <div ref={box} />
    </figure>
  );
}
