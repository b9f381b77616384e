// The capability histogram: bins of the period's values, the fitted normal curve (on the
// histogram's count axis), and the specification limits, drawn with uPlot (the curve is
// its series; bins and limit lines are painted by hooks on its canvas).

import { fmt } from "./dom.js";

const C = {
  bar: "rgba(59, 74, 102, 0.35)",
  barEdge: "#3b4a66",
  curve: "#7048e8",
  spec: "#d64545",
  target: "#1f9d55",
  mean: "#1d2330",
};

/** `report` is the /capability answer; `names` the translated labels. */
export function capabilityHistogram(el, report, names, width) {
  const { histogram, normal, spec } = report;
  const edges = histogram.edges;
  const marks = [
    [spec.lsl, "LSL", C.spec],
    [spec.usl, "USL", C.spec],
    [spec.target, names.target, C.target],
    [report.indices.mean, names.mean, C.mean],
  ].filter(([v]) => v !== null && v !== undefined);
  const xs = [edges[0], edges[edges.length - 1], ...marks.map(([v]) => v)];
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const pad = (hi - lo) * 0.04 || 1;
  const top = Math.max(...histogram.counts, ...normal.count) * 1.12 || 1;
  const opts = {
    title: names.title,
    width,
    height: 240,
    scales: { x: { time: false, range: () => [lo - pad, hi + pad] }, y: { range: () => [0, top] } },
    axes: [
      { values: (u, splits) => splits.map((v) => fmt(v, 5)) },
      { size: 50, values: (u, splits) => splits.map((v) => fmt(v, 4)) },
    ],
    series: [
      { label: report.unit || "x", value: (u, v) => (v === null || v === undefined ? "–" : fmt(v)) },
      {
        label: names.curve,
        stroke: C.curve,
        width: 2,
        points: { show: false },
        value: (u, v) => (v === null || v === undefined ? "–" : fmt(v, 4)),
      },
    ],
    hooks: {
      drawAxes: [(u) => drawBins(u, histogram)],
      draw: [(u) => drawMarks(u, marks)],
    },
  };
  return new uPlot(opts, [normal.x, normal.count], el);
}

function drawBins(u, histogram) {
  const { ctx } = u;
  const y0 = u.valToPos(0, "y", true);
  ctx.save();
  ctx.fillStyle = C.bar;
  ctx.strokeStyle = C.barEdge;
  ctx.lineWidth = 1;
  histogram.counts.forEach((count, i) => {
    if (!count) return;
    const x0 = u.valToPos(histogram.edges[i], "x", true);
    const x1 = u.valToPos(histogram.edges[i + 1], "x", true);
    const y = u.valToPos(count, "y", true);
    ctx.fillRect(x0, y, x1 - x0, y0 - y);
    ctx.strokeRect(x0, y, x1 - x0, y0 - y);
  });
  ctx.restore();
}

function drawMarks(u, marks) {
  const { ctx, bbox } = u;
  const ratio = window.devicePixelRatio || 1;
  ctx.save();
  ctx.font = `${11 * ratio}px system-ui, sans-serif`;
  ctx.lineWidth = 1.5 * ratio;
  marks.forEach(([value, label, color], i) => {
    const x = Math.round(u.valToPos(value, "x", true));
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.setLineDash(label === "LSL" || label === "USL" ? [6 * ratio, 3 * ratio] : [2 * ratio, 3 * ratio]);
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
    ctx.fillText(`${label} ${fmt(value)}`, x + 3 * ratio, bbox.top + (12 + 12 * i) * ratio);
  });
  ctx.restore();
}
