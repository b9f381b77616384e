// Reading control charts of the most recent points.
//
// The chart route reads forward from a start time and stops at 5,000 points, so "the last
// N points" needs a start: it is found from the per-bucket counts of the measurements,
// over longer and longer spans ending at the last value, and the chart is then read from
// there (following next_cursor to the last page when one page is not enough).

import { api } from "./api.js";
import { query } from "./dom.js";

const EARLIEST = "2000-01-01T00:00:00Z";
const LADDER = [
  [3600, 30], // span, bucket width (s)
  [86400, 600],
  [30 * 86400, 6 * 3600],
  [400 * 86400, 5 * 86400],
];
const MAX_PAGES = 10;

/** Where to start reading to get the last `values` good values up to `until`; null: no data. */
export async function recentStart(id, values, until) {
  const end = new Date(until.getTime() + 1000).toISOString();
  const first = await api(
    `api/v1/measurements${query({ characteristic: id, start: EARLIEST, end, limit: 1 })}`,
  );
  if (!first.items.length) return null;
  const earliest = new Date(first.items[0].time);
  for (const [span, width] of LADDER) {
    const from = new Date(until.getTime() - span * 1000);
    const found = await countBack(id, from.toISOString(), end, width, values);
    if (found) return found;
    if (from <= earliest) break;
  }
  return earliest.toISOString();
}

async function countBack(id, start, end, width, values) {
  const series = await api(
    `api/v1/measurements/buckets${query({ characteristic: id, start, end, width: `${width}s` })}`,
  );
  let total = 0;
  for (let i = series.buckets.length - 1; i >= 0; i--) {
    total += series.buckets[i].n;
    if (total >= values) return series.buckets[i].start;
  }
  return null;
}

/**
 * The chart for `params` (period, or start/end); when the range holds more than one page,
 * the last page (the most recent points), with a note saying so.
 */
export async function fetchChart(id, params) {
  const base = `api/v1/characteristics/${encodeURIComponent(id)}/chart`;
  let chart = await api(base + query(params));
  let pages = 1;
  while (chart.truncated && chart.next_cursor && pages < MAX_PAGES) {
    chart = await api(base + query({ ...params, cursor: chart.next_cursor }));
    pages += 1;
  }
  if (pages > 1) chart.pagesSkipped = pages - 1;
  return chart;
}

/** The last `count` points of a chart (segments, EWMA and CUSUM indices re-based). */
export async function fetchRecentChart(id, count, subgroupSize, until) {
  const start = await recentStart(id, count * subgroupSize, until);
  if (start === null) return null;
  const chart = await fetchChart(id, { start });
  return lastPoints(chart, count);
}

/** The chart cut to its last `count` points. */
export function lastPoints(chart, count) {
  const from = Math.max(0, chart.points.length - count);
  if (from === 0) return chart;
  const shift = (items) => items.filter((p) => p.index >= from).map((p) => ({ ...p, index: p.index - from }));
  return {
    ...chart,
    points: chart.points.slice(from),
    segments: chart.segments
      .filter((s) => s.last_index >= from)
      .map((s) => ({
        ...s,
        first_index: Math.max(s.first_index, from) - from,
        last_index: s.last_index - from,
      })),
    ewma: chart.ewma ? { ...chart.ewma, points: shift(chart.ewma.points) } : null,
    cusum: chart.cusum ? { ...chart.cusum, points: shift(chart.cusum.points) } : null,
  };
}

/** Where a chart read must start to include this point (a subgroup's first value). */
export function pointStart(point) {
  return point.first_time || point.time;
}

/** The limit bands by version number. */
export function limitsByVersion(chart) {
  return new Map(chart.limit_versions.map((v) => [v.version, v.limits]));
}
