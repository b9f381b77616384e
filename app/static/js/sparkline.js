// The small chart of a tile: recent plotted points with the current limits, on a canvas.

const COLORS = { line: "#44516b", point: "#1d2330", alarm: "#d64545", limit: "#d64545", center: "#1f9d55" };

/**
 * Draw `points` ([{value, violated}]) into `canvas`; `limits` ({center, ucl, lcl}) or null.
 * The canvas keeps its CSS size; its pixels follow the device pixel ratio.
 */
export function drawSparkline(canvas, points, limits) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 240;
  const height = canvas.clientHeight || 44;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  canvas.dataset.points = String(points.length);
  if (!points.length) return;
  const values = points.map((p) => p.value);
  const bounds = limits ? [limits.lcl, limits.ucl, ...values] : values;
  let lo = Math.min(...bounds);
  let hi = Math.max(...bounds);
  if (hi === lo) {
    lo -= 1;
    hi += 1;
  }
  const pad = 3;
  const x = (i) => pad + (points.length === 1 ? 0 : (i * (width - 2 * pad)) / (points.length - 1));
  const y = (v) => height - pad - ((v - lo) * (height - 2 * pad)) / (hi - lo);
  if (limits) {
    hline(ctx, y(limits.ucl), width, COLORS.limit, [3, 3]);
    hline(ctx, y(limits.lcl), width, COLORS.limit, [3, 3]);
    hline(ctx, y(limits.center), width, COLORS.center, []);
  }
  ctx.strokeStyle = COLORS.line;
  ctx.lineWidth = 1.2;
  ctx.setLineDash([]);
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(x(i), y(p.value)) : ctx.moveTo(x(i), y(p.value))));
  ctx.stroke();
  points.forEach((p, i) => {
    if (!p.violated && i !== points.length - 1) return;
    ctx.fillStyle = p.violated ? COLORS.alarm : COLORS.point;
    ctx.beginPath();
    ctx.arc(x(i), y(p.value), p.violated ? 2.8 : 2.2, 0, 2 * Math.PI);
    ctx.fill();
  });
}

function hline(ctx, y, width, color, dash) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.setLineDash(dash);
  ctx.beginPath();
  ctx.moveTo(0, y);
  ctx.lineTo(width, y);
  ctx.stroke();
}
