// The raftlog console: polls this node's admin API every 2 s and renders plain tables.
// Text goes into the page only through textContent, never as HTML.
"use strict";

const POLL_MS = 2000;

function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "-" : String(value);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function fill(tableId, items, render) {
  const body = document.querySelector(`#${tableId} tbody`);
  const rows = items.map(render);
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = cell(tr, "none", "muted");
    td.colSpan = document.querySelectorAll(`#${tableId} thead th`).length;
    body.appendChild(tr);
  }
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function renderNodes(cluster) {
  fill("nodes", cluster.nodes, (node) => {
    const tr = document.createElement("tr");
    tr.className = "node-row";
    tr.dataset.node = node.node_id;
    cell(tr, node.node_id);
    cell(tr, node.kafka);
    cell(tr, node.internal);
    if (node.this_node) cell(tr, "this node", "muted");
    else cell(tr, node.connected ? "connected" : "down", node.connected ? "up" : "down");
    cell(tr, node.node_id === cluster.controller_leader ? "controller leader" : "");
    return tr;
  });
}

function renderTopics(topics) {
  fill("topics", topics, (topic) => {
    const tr = document.createElement("tr");
    tr.className = "topic-row";
    tr.dataset.topic = topic.name;
    cell(tr, topic.internal ? `${topic.name} (internal)` : topic.name);
    cell(tr, topic.partitions);
    cell(tr, topic.replication_factor);
    cell(tr, topic.segments);
    const configs = Object.entries(topic.configs).map(([k, v]) => `${k}=${v}`).join(", ");
    cell(tr, configs || "-");
    return tr;
  });
}

function segmentChip(segment) {
  const span = document.createElement("span");
  span.className = segment.state === "head" ? "segment head" : "segment";
  const range = segment.state === "head"
    ? `${segment.base_offset}… head`
    : `${segment.base_offset}–${segment.last_offset}`;
  const leader = segment.leader === null ? "?" : segment.leader;
  span.textContent = `${range} · leader ${leader} · term ${segment.term ?? "?"}`;
  span.title = `group ${segment.group_id}, replicas ${segment.replicas.join(",")}, ${segment.state}`;
  return span;
}

function renderPartitions(partitions) {
  fill("partitions", partitions, (partition) => {
    const tr = document.createElement("tr");
    tr.className = "partition-row";
    tr.dataset.partition = `${partition.topic}/${partition.partition}`;
    cell(tr, `${partition.topic}/${partition.partition}`);
    cell(tr, partition.leader);
    cell(tr, partition.term);
    cell(tr, partition.replicas.join(","));
    cell(tr, partition.log_start_offset);
    cell(tr, partition.high_watermark);
    const chain = cell(tr, "");
    chain.replaceChildren(...partition.segments.map(segmentChip));
    return tr;
  });
}

function renderGroups(groups) {
  const rows = [];
  for (const group of groups) {
    const offsets = group.offsets.length ? group.offsets : [null];
    for (const offset of offsets) rows.push({ group, offset });
  }
  fill("groups", rows, ({ group, offset }) => {
    const tr = document.createElement("tr");
    tr.className = "group-row";
    tr.dataset.group = group.group;
    cell(tr, group.group);
    cell(tr, group.state);
    cell(tr, group.members);
    cell(tr, offset ? `${offset.topic}/${offset.partition}` : null);
    cell(tr, offset ? offset.committed : null);
    cell(tr, offset ? offset.end : null);
    const lag = offset ? offset.lag : null;
    cell(tr, lag, lag ? "lag behind" : "lag");
    return tr;
  });
}

function setStatus(text, ok) {
  const badge = document.getElementById("status");
  badge.textContent = text;
  badge.className = ok ? "badge ok" : "badge bad";
}

async function refresh() {
  try {
    const cluster = await getJson("/v1/cluster");
    const topics = (await getJson("/v1/topics")).topics;
    const showInternal = document.getElementById("show-internal").checked;
    const shown = topics.filter((topic) => showInternal || !topic.internal);
    const partitions = [];
    for (const topic of shown) {
      const path = `/v1/topics/${encodeURIComponent(topic.name)}/partitions`;
      partitions.push(...(await getJson(path)).partitions);
    }
    const groups = (await getJson("/v1/groups")).groups;
    document.getElementById("cluster-id").textContent =
      `cluster ${cluster.cluster_id ?? "(not formed)"} · seen from node ${cluster.node_id}`;
    setStatus(cluster.ready ? "ready" : "not ready", cluster.ready);
    renderNodes(cluster);
    renderTopics(topics);
    renderPartitions(partitions);
    renderGroups(groups);
    document.getElementById("updated").textContent =
      `updated ${new Date().toLocaleTimeString()}`;
    document.body.dataset.loaded = "true";
  } catch (error) {
    setStatus(`unreachable: ${error.message}`, false);
  }
}

document.getElementById("show-internal").addEventListener("change", refresh);
refresh();
setInterval(refresh, POLL_MS);
