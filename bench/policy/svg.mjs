// Hand-written SVG plot (no plotting dependency): latency relative to `never` against dollars
// per run, one marker per fixed policy and one polyline per α of the EV rule over the λ sweep.

const W = 640;
const H = 420;
const M = { left: 70, right: 150, top: 40, bottom: 55 };
const COLORS = { never: '#555', always: '#d62728', threshold: '#ff7f0e', oracle: '#2ca02c' };
const EV_COLORS = ['#1f77b4', '#9467bd', '#17becf'];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function ticks(lo, hi, n = 5) {
  const span = hi - lo || Math.abs(hi) || 1;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * @param {{title: string, fixed: Array<{policy: string, usd: number, rel: number}>,
 *          ev: Array<{alpha: number, points: Array<{lambda: number, usd: number, rel: number}>}>}} data
 */
export function latencyDollarSvg(data) {
  const all = [...data.fixed, ...data.ev.flatMap((c) => c.points)];
  let xlo = Math.min(...all.map((p) => p.usd));
  let xhi = Math.max(...all.map((p) => p.usd));
  let ylo = Math.min(...all.map((p) => p.rel));
  let yhi = Math.max(...all.map((p) => p.rel));
  const padX = (xhi - xlo || xhi || 1e-6) * 0.08;
  const padY = (yhi - ylo || 0.01) * 0.1;
  xlo -= padX;
  xhi += padX;
  ylo -= padY;
  yhi += padY;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x) => M.left + ((x - xlo) / (xhi - xlo)) * pw;
  const sy = (y) => M.top + (1 - (y - ylo) / (yhi - ylo)) * ph;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${M.left}" y="22" font-size="14" font-weight="bold">${esc(data.title)}</text>`);
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (const t of ticks(xlo, xhi)) {
    const x = sx(t);
    out.push(`<line x1="${x}" y1="${M.top}" x2="${x}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x}" y="${M.top + ph + 15}" text-anchor="middle">${esc(t < 0.01 ? t.toExponential(1) : t.toFixed(4))}</text>`);
  }
  for (const t of ticks(ylo, yhi)) {
    const y = sy(t);
    out.push(`<line x1="${M.left}" y1="${y}" x2="${M.left + pw}" y2="${y}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${y + 4}" text-anchor="end">${esc(t.toFixed(3))}</text>`);
  }
  out.push(`<text x="${M.left + pw / 2}" y="${H - 12}" text-anchor="middle">dollars per run</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">mean latency / never</text>`);
  data.ev.forEach((c, i) => {
    const color = EV_COLORS[i % EV_COLORS.length];
    const pts = c.points.map((p) => `${sx(p.usd).toFixed(1)},${sy(p.rel).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="1.5"/>`);
    for (const p of c.points)
      out.push(`<circle cx="${sx(p.usd).toFixed(1)}" cy="${sy(p.rel).toFixed(1)}" r="3" fill="${color}"><title>EV α=${c.alpha} λ=${p.lambda}</title></circle>`);
  });
  for (const p of data.fixed) {
    const x = sx(p.usd);
    const y = sy(p.rel);
    out.push(`<rect x="${(x - 4).toFixed(1)}" y="${(y - 4).toFixed(1)}" width="8" height="8" fill="${COLORS[p.policy] ?? '#000'}"><title>${esc(p.policy)}</title></rect>`);
  }
  let ly = M.top + 10;
  const lx = M.left + pw + 12;
  for (const p of data.fixed) {
    out.push(`<rect x="${lx}" y="${ly - 8}" width="8" height="8" fill="${COLORS[p.policy] ?? '#000'}"/><text x="${lx + 14}" y="${ly}">${esc(p.policy)}</text>`);
    ly += 16;
  }
  data.ev.forEach((c, i) => {
    out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 8}" y2="${ly - 4}" stroke="${EV_COLORS[i % EV_COLORS.length]}" stroke-width="2"/><text x="${lx + 14}" y="${ly}">EV α=${c.alpha} (λ sweep)</text>`);
    ly += 16;
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
