// Charts: Chart.js 4 (vendor/chart.umd.min.js, a classic script loaded before the modules,
// so it is window.Chart). Without it the rest of the page still works.

import { $ } from "./dom.js";
import {
  PAYMENT_STATUSES, formatCount, formatDayLabel, formatMoney, formatPercent, minorToMajorForChart,
  nf, safeCurrency, statusLabel,
} from "./format.js";
import { S } from "./state.js";

const charts = { revenue: null, status: null };

function chartLib() {
  return typeof window.Chart === "function" ? window.Chart : null;
}

function setupChartDefaults(Chart) {
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = "#5b6577";
  Chart.defaults.borderColor = "#e9ecf2";
}

export function renderCharts() {
  const Chart = chartLib();
  if (!Chart) return;
  const st = S.stats;
  const cur = st.currency;
  const series = st.revenue_by_day;
  const labels = series.map((p) => formatDayLabel(p.date));
  const revenue = series.map((p) => minorToMajorForChart(p.revenue, cur));
  const orders = series.map((p) => p.orders);

  if (!charts.revenue) {
    setupChartDefaults(Chart);
    charts.revenue = new Chart($("chart-revenue"), {
      data: {
        labels,
        datasets: [
          {
            type: "bar", label: "Revenue", data: revenue, yAxisID: "y", order: 2,
            backgroundColor: "rgba(79, 70, 229, .78)", hoverBackgroundColor: "#4338ca",
            borderRadius: 4, maxBarThickness: 22,
          },
          {
            type: "line", label: "Orders", data: orders, yAxisID: "y1", order: 1,
            borderColor: "#0ea5e9", backgroundColor: "#0ea5e9", borderWidth: 2,
            pointRadius: 0, pointHoverRadius: 4, cubicInterpolationMode: "monotone",
          },
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: { duration: 300 },
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: {
            position: "top", align: "end",
            labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8, sort: (a, b) => a.datasetIndex - b.datasetIndex },
          },
          tooltip: {
            callbacks: {
              title: (items) => {
                const p = S.stats?.revenue_by_day[items[0]?.dataIndex];
                return p ? formatDayLabel(p.date) : "";
              },
              label: (ctx) => {
                const p = S.stats?.revenue_by_day[ctx.dataIndex];
                if (!p) return "";
                return ctx.dataset.yAxisID === "y"
                  ? ` Revenue: ${formatMoney(p.revenue, S.stats.currency)}`
                  : ` Orders: ${formatCount(p.orders)}`;
              },
            },
          },
        },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: {
            beginAtZero: true, position: "left", grace: "5%",
            ticks: {
              maxTicksLimit: 6,
              callback: (v) => nf(`axis:${S.stats?.currency}`, () => new Intl.NumberFormat(undefined, {
                style: "currency", currency: safeCurrency(S.stats?.currency), notation: "compact", maximumFractionDigits: 1,
              })).format(v),
            },
          },
          y1: {
            beginAtZero: true, position: "right", grid: { display: false }, grace: "10%",
            ticks: { precision: 0, maxTicksLimit: 6 },
          },
        },
      },
    });
  } else {
    const c = charts.revenue;
    c.data.labels = labels;
    c.data.datasets[0].data = revenue;
    c.data.datasets[1].data = orders;
    c.update("none");
  }
  const totalRevenue = series.reduce((a, p) => a + p.revenue, 0);
  const totalOrders = series.reduce((a, p) => a + p.orders, 0);
  $("chart-revenue").setAttribute("aria-label",
    `Revenue and orders per day, last 30 days: ${formatMoney(totalRevenue, cur)} revenue from ${formatCount(totalOrders)} orders.`);

  // Payments by status.
  const pbs = st.payments_by_status;
  const keys = [...Object.keys(PAYMENT_STATUSES), ...Object.keys(pbs).filter((k) => !PAYMENT_STATUSES[k])];
  const shown = keys.filter((k) => (pbs[k] || 0) > 0);
  const sLabels = shown.map((k) => statusLabel(k, "payment"));
  const sData = shown.map((k) => pbs[k]);
  const sColors = shown.map((k) => PAYMENT_STATUSES[k]?.color || "#64748b");
  if (!charts.status) {
    charts.status = new Chart($("chart-status"), {
      type: "doughnut",
      plugins: [centerTotal],
      data: { labels: sLabels, datasets: [{ data: sData, backgroundColor: sColors, borderColor: "#fff", borderWidth: 2, hoverOffset: 4 }] },
      options: {
        responsive: true, maintainAspectRatio: false, cutout: "64%", animation: { duration: 300 },
        plugins: {
          legend: { position: "bottom", labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8, padding: 14 } },
          tooltip: {
            callbacks: {
              label: (ctx) => {
                const total = ctx.dataset.data.reduce((a, b) => a + b, 0) || 1;
                return ` ${ctx.label}: ${formatCount(ctx.parsed)} (${formatPercent(ctx.parsed / total)})`;
              },
            },
          },
        },
      },
    });
  } else {
    const c = charts.status;
    c.data.labels = sLabels;
    c.data.datasets[0].data = sData;
    c.data.datasets[0].backgroundColor = sColors;
    c.update("none");
  }
  $("chart-status-empty").hidden = sData.length > 0;
  $("chart-status").setAttribute("aria-label", sData.length
    ? `Payments by status: ${shown.map((k, i) => `${sLabels[i]} ${formatCount(sData[i])}`).join(", ")}.`
    : "Payments by status: no payments yet.");
}

// Draws the total in the doughnut's hole.
const centerTotal = {
  id: "centerTotal",
  afterDraw(chart) {
    const data = chart.data.datasets[0]?.data || [];
    const total = data.reduce((a, b) => a + b, 0);
    if (!total) return;
    const meta = chart.getDatasetMeta(0);
    const arc = meta?.data?.[0];
    if (!arc) return;
    const { ctx } = chart;
    const { x, y } = arc;
    ctx.save();
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#0f172a";
    ctx.font = `700 24px ${window.Chart.defaults.font.family}`;
    ctx.fillText(formatCount(total), x, y - 8);
    ctx.fillStyle = "#5b6577";
    ctx.font = `500 12px ${window.Chart.defaults.font.family}`;
    ctx.fillText(total === 1 ? "payment" : "payments", x, y + 14);
    ctx.restore();
  },
};

export function destroyCharts() {
  for (const k of Object.keys(charts)) {
    charts[k]?.destroy();
    charts[k] = null;
  }
}
