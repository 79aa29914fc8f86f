// Loss curve as one self-contained HTML file (inline SVG, no scripts, no network): one polyline per stage,
// plus the held-out loss and its shuffled-media control where the run validated.
import type { StepRecord } from './checkpoint.js';

const WIDTH = 800;
const HEIGHT = 400;
const MARGIN = { left: 64, right: 24, top: 40, bottom: 48 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf'];
/** Held-out series drawn over the stage curves: the val loss and its shuffled-media control. */
const VAL_SERIES = [
  { field: 'val_loss', label: 'val loss', color: '#000000', dash: '6 3' },
  { field: 'val_loss_shuffled', label: 'val, media shuffled', color: '#7f7f7f', dash: '2 3' },
] as const;

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Round tick positions covering [lo, hi]: steps of 1, 2 or 5 × 10^k. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function formatTick(v: number): string {
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
    ? v.toExponential(1)
    : String(Number(v.toPrecision(6)));
}

/** The SVG of loss over global step, stages in different colours with their names in a legend. */
export function lossCurveSvg(records: readonly StepRecord[], title = 'Training loss'): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
  if (records.length === 0) {
    parts.push(
      `<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle">no steps recorded</text>`,
      '</svg>',
    );
    return parts.join('\n');
  }
  const steps = records.map((r) => r.step);
  const valPoints = VAL_SERIES.map((series) =>
    records.flatMap((r) => {
      const v = r[series.field];
      return v === undefined ? [] : [{ step: r.step, loss: v }];
    }),
  );
  const losses = [...records.map((r) => r.loss), ...valPoints.flat().map((p) => p.loss)];
  const x0 = Math.min(...steps);
  const x1 = Math.max(x0 + 1, ...steps);
  const lossMin = Math.min(...losses);
  const lossMax = Math.max(...losses);
  const pad = (lossMax - lossMin) * 0.05 || Math.abs(lossMax) * 0.05 || 1;
  const y0 = lossMin - pad;
  const y1 = lossMax + pad;
  const px = (s: number) => MARGIN.left + ((s - x0) / (x1 - x0)) * plotW;
  const py = (l: number) => MARGIN.top + (1 - (l - y0) / (y1 - y0)) * plotH;

  const bottom = MARGIN.top + plotH;
  for (const t of niceTicks(y0, y1)) {
    const y = py(t).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`,
    );
  }
  for (const t of niceTicks(x0, x1).filter((t) => Number.isInteger(t))) {
    const x = px(t).toFixed(1);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 4}" stroke="black"/>`,
      `<text x="${x}" y="${bottom + 18}" text-anchor="middle">${formatTick(t)}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="black"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 10}" text-anchor="middle">optimizer step</text>`,
    `<text x="16" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + plotH / 2})">loss</text>`,
  );

  const stages = [...new Set(records.map((r) => r.stageIndex))].sort((a, b) => a - b);
  stages.forEach((stageIndex, i) => {
    const own = records.filter((r) => r.stageIndex === stageIndex);
    const color = COLORS[i % COLORS.length];
    const points = own.map((r) => `${px(r.step).toFixed(1)},${py(r.loss).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline data-stage="${escapeXml(own[0].stage)}" fill="none" stroke="${color}" stroke-width="1.5" points="${points}"/>`,
      `<rect x="${MARGIN.left + plotW - 150}" y="${MARGIN.top + 10 + i * 18}" width="12" height="3" fill="${color}"/>`,
      `<text x="${MARGIN.left + plotW - 132}" y="${MARGIN.top + 14 + i * 18}">${escapeXml(own[0].stage)}</text>`,
    );
  });
  let row = stages.length;
  VAL_SERIES.forEach((series, k) => {
    const own = valPoints[k];
    if (own.length === 0) return;
    const xy = own.map((p) => [px(p.step).toFixed(1), py(p.loss).toFixed(1)]);
    const legendY = MARGIN.top + 10 + row * 18;
    row++;
    parts.push(
      `<polyline data-series="${series.field}" fill="none" stroke="${series.color}" stroke-width="1.5" stroke-dasharray="${series.dash}" points="${xy.map((p) => p.join(',')).join(' ')}"/>`,
      ...xy.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="2.5" fill="${series.color}"/>`),
      `<line x1="${MARGIN.left + plotW - 150}" x2="${MARGIN.left + plotW - 138}" y1="${legendY + 1.5}" y2="${legendY + 1.5}" stroke="${series.color}" stroke-width="2" stroke-dasharray="${series.dash}"/>`,
      `<text x="${MARGIN.left + plotW - 132}" y="${legendY + 4}">${series.label}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** A standalone HTML page with the loss curve and the last step's numbers. */
export function lossCurveHtml(records: readonly StepRecord[], title = 'Training loss'): string {
  const last = records[records.length - 1];
  const validated = records.filter((r) => r.val_loss !== undefined).at(-1);
  const held =
    validated?.val_loss === undefined
      ? ''
      : `; step ${validated.step}: val loss ${validated.val_loss.toFixed(4)}` +
        (validated.val_loss_shuffled === undefined
          ? ''
          : `, media shuffled ${validated.val_loss_shuffled.toFixed(4)}`);
  const time = last?.elapsed === undefined ? '' : `, ${last.elapsed.toFixed(0)} s of training`;
  const summary = last
    ? `step ${last.step}, stage ${escapeXml(last.stage)}, loss ${last.loss.toFixed(4)}, lr ${last.lr.toExponential(2)}${time}${held}`
    : 'no steps recorded';
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeXml(title)}</title>`,
    '<style>body{font-family:sans-serif;margin:24px}</style>',
    '</head><body>',
    lossCurveSvg(records, title),
    `<p>${summary}</p>`,
    '</body></html>',
    '',
  ].join('\n');
}
