// Labels in English and Chinese; the choice is kept in localStorage ("riskgraph.lang").
const LANG_KEY = "riskgraph.lang";

const DICT = {
  en: {
    "app.title": "RiskGraph", "app.subtitle": "credit grades and fraud rings",
    "nav.risk": "Risk lists", "nav.rings": "Rings", "nav.path": "Path search", "nav.models": "Models",
    "nav.key": "API key", "lang.toggle": "中文", "search.placeholder": "Entity ID", "search.go": "Open",
    "role.unknown": "role unknown", "role.none": "no key",
    "type.person": "Person", "type.employer": "Employer", "type.clinic": "Clinic", "type.pharmacy": "Pharmacy",
    "type.agency": "Agency", "type.phone": "Phone", "type.address": "Address", "type.bank_account": "Bank account",
    "key.title": "API key", "key.intro": "The pages call the RiskGraph API with your key (sent as the X-API-Key header, kept in this browser only). Your key's role decides what you may see.",
    "key.label": "Key", "key.save": "Save and continue", "key.clear": "Forget key", "key.saved": "Key accepted.",
    "key.invalid": "This key was refused by the server.", "key.current": "A key is stored in this browser.",
    "key.dev": "First time on this machine? Development keys (one per role, accepted from this computer only) were written to:",
    "key.dev.roles": "Use the inspector key for risk lists, investigator for unmasked graphs, model_owner for models.",
    "key.none": "Ask your administrator for a key.",
    "key.needed": "Enter an API key to continue.",
    "risk.title": "Ranked risk list", "risk.region": "Region", "risk.grade": "Grade", "risk.rule": "Rule",
    "risk.ring": "Ring", "risk.min": "Min score", "risk.max": "Max score", "risk.pagesize": "Rows per page",
    "risk.apply": "Apply", "risk.reset": "Reset", "risk.export": "Export CSV", "risk.any": "any",
    "risk.summary": "{total} matching · rows {from}–{to} · scores as of {asof}", "risk.empty": "No entity matches these filters.",
    "risk.prev": "‹ Previous", "risk.next": "Next ›", "risk.exporting": "Exporting…", "risk.exported": "Exported {n} rows.",
    "risk.allregions": "All regions", "risk.sortby": "Sort by {col}",
    "landing.title": "Nothing to show for this key", "landing.nopages": "The {role} role uses the credit API only; these pages have nothing it may open. Use another key.",
    "col.rank": "#", "col.entity": "Entity", "col.grade": "Grade", "col.score": "Risk", "col.points": "Points",
    "col.region": "Region", "col.reasons": "Top reasons", "col.rules": "Rule hits", "col.rings": "Rings",
    "col.type": "Type", "col.size": "Size", "col.money": "Money at stake", "col.why": "Why",
    "grade.capped": "capped by a rule (score alone: {g})",
    "entity.details": "Details", "entity.credit": "Grade and reasons", "entity.rules": "Rule evidence",
    "entity.rings": "Rings", "entity.norings": "Not a member of any detected ring.", "entity.norules": "No rule fired.",
    "entity.masked": "Personal data is masked for your role.", "entity.points": "credit points",
    "entity.prob": "probability of fraud or serious discredit", "entity.model": "model", "entity.asof": "as of",
    "entity.scoregrade": "grade from points alone", "entity.cap": "grade cap", "entity.bands": "bands",
    "entity.noreasons": "No reasons recorded.", "entity.notscored": "Not scored.",
    "entity.severity": "severity", "entity.records": "{n} records", "entity.showring": "Show in graph",
    "entity.openring": "Ring view", "entity.back": "Back to the list",
    "graph.title": "Linked entities", "graph.hops": "Hops", "graph.limit": "Nodes", "graph.reload": "Reload",
    "graph.colour": "Colour by", "graph.bytype": "entity type", "graph.byrisk": "risk grade",
    "graph.rels": "Relationships", "graph.expand": "Expand", "graph.open": "Open", "graph.fit": "Fit",
    "graph.help": "Click a node to select it, double-click to expand it; drag to move, scroll to zoom.",
    "graph.nodes": "{n} nodes, {e} links", "graph.truncated": "(truncated: nearest nodes only)",
    "graph.selected": "Selected", "graph.noselection": "Select a node to see it here.",
    "graph.identifier": "Shared identifier (phone, address or bank account) linking entities.",
    "graph.pathfrom": "Path from here", "graph.pathto": "Path to here", "graph.legend": "Legend",
    "graph.member": "ring member", "graph.nodelist": "Nodes in view",
    "ring.title": "Ring", "ring.members": "Members", "ring.evidence": "Evidence graph", "ring.score": "score",
    "ring.size": "members", "ring.money": "money at stake", "rings.title": "Suspected rings",
    "rings.type": "Ring type", "rings.min": "Min score", "rings.entity": "Containing entity",
    "path.title": "Path between two entities", "path.from": "From", "path.to": "To", "path.max": "Max hops",
    "path.find": "Find path", "path.found": "Connected in {n} hops.", "path.notfound": "No path within {n} hops.",
    "models.title": "Models", "models.version": "Version", "models.kind": "Kind", "models.created": "Created",
    "models.champion": "champion", "models.candidate": "candidate", "models.features": "Features",
    "models.metrics": "Metrics", "models.promote": "Promote", "models.promoted": "{v} is now the champion; served scores switch at the next re-scoring.",
    "models.confirm": "Make {v} the champion for {t}?", "models.report": "Plots (calibration, feature importance, SHAP summary) are in report.html in the pipeline's output folder.",
    "models.detail": "Version detail", "models.calibration": "Calibration",
    "models.withheld.fraud": "Metrics withheld: only {n} confirmed-fraud labels; at least {min} per class are needed.",
    "models.withheld.clean": "Metrics withheld: only {n} confirmed not-fraud labels; at least {min} per class are needed.",
    "err.forbidden": "Your role may not see this: {msg}", "err.notfound": "Not found: {msg}",
    "err.generic": "Request failed: {msg}", "err.unavailable": "Not ready: {msg}",
    "loading": "Loading…", "yes": "yes", "no": "no", "masked": "masked",
  },
  zh: {
    "app.title": "风险图谱", "app.subtitle": "信用评级与欺诈团伙",
    "nav.risk": "风险清单", "nav.rings": "团伙", "nav.path": "路径查询", "nav.models": "模型",
    "nav.key": "API 密钥", "lang.toggle": "English", "search.placeholder": "实体编号", "search.go": "打开",
    "role.unknown": "角色未知", "role.none": "未设置密钥",
    "type.person": "参保人", "type.employer": "用人单位", "type.clinic": "医疗机构", "type.pharmacy": "药店",
    "type.agency": "中介机构", "type.phone": "电话", "type.address": "地址", "type.bank_account": "银行账户",
    "key.title": "API 密钥", "key.intro": "页面使用您的密钥调用 RiskGraph 接口（以 X-API-Key 请求头发送，仅保存在本浏览器）。密钥的角色决定您能看到的内容。",
    "key.label": "密钥", "key.save": "保存并继续", "key.clear": "清除密钥", "key.saved": "密钥有效。",
    "key.invalid": "服务器拒绝了此密钥。", "key.current": "本浏览器已保存密钥。",
    "key.dev": "首次在本机使用？开发密钥（每个角色一个，仅限本机访问）已写入：",
    "key.dev.roles": "风险清单用 inspector 密钥，未脱敏图谱用 investigator，模型管理用 model_owner。",
    "key.none": "请向管理员申请密钥。",
    "key.needed": "请输入 API 密钥。",
    "risk.title": "风险排名", "risk.region": "地区", "risk.grade": "等级", "risk.rule": "规则",
    "risk.ring": "团伙", "risk.min": "最低分", "risk.max": "最高分", "risk.pagesize": "每页行数",
    "risk.apply": "筛选", "risk.reset": "重置", "risk.export": "导出 CSV", "risk.any": "全部",
    "risk.summary": "共 {total} 条 · 第 {from}–{to} 条 · 评分时间 {asof}", "risk.empty": "没有符合条件的实体。",
    "risk.prev": "‹ 上一页", "risk.next": "下一页 ›", "risk.exporting": "正在导出…", "risk.exported": "已导出 {n} 行。",
    "risk.allregions": "全部地区", "risk.sortby": "按{col}排序",
    "landing.title": "此密钥没有可用的页面", "landing.nopages": "{role} 角色仅用于信用查询接口，无权打开这些页面。请使用其他密钥。",
    "col.rank": "排名", "col.entity": "实体", "col.grade": "等级", "col.score": "风险", "col.points": "信用分",
    "col.region": "地区", "col.reasons": "主要原因", "col.rules": "命中规则", "col.rings": "团伙",
    "col.type": "类型", "col.size": "人数", "col.money": "涉及金额", "col.why": "依据",
    "grade.capped": "被规则封顶（仅按分数：{g}）",
    "entity.details": "基本信息", "entity.credit": "等级与原因", "entity.rules": "规则证据",
    "entity.rings": "所属团伙", "entity.norings": "不属于任何已发现的团伙。", "entity.norules": "未命中规则。",
    "entity.masked": "您的角色无权查看个人信息，已脱敏。", "entity.points": "信用分",
    "entity.prob": "欺诈或严重失信概率", "entity.model": "模型", "entity.asof": "评分时间",
    "entity.scoregrade": "仅按分数的等级", "entity.cap": "等级上限", "entity.bands": "分档",
    "entity.noreasons": "无原因记录。", "entity.notscored": "未评分。",
    "entity.severity": "严重程度", "entity.records": "{n} 条记录", "entity.showring": "在图中显示",
    "entity.openring": "团伙视图", "entity.back": "返回清单",
    "graph.title": "关联实体", "graph.hops": "跳数", "graph.limit": "节点数", "graph.reload": "重新加载",
    "graph.colour": "着色", "graph.bytype": "实体类型", "graph.byrisk": "风险等级",
    "graph.rels": "关系类型", "graph.expand": "展开", "graph.open": "打开", "graph.fit": "适应窗口",
    "graph.help": "单击选择节点，双击展开；拖动移动，滚轮缩放。",
    "graph.nodes": "{n} 个节点，{e} 条关系", "graph.truncated": "（已截断：仅显示最近的节点）",
    "graph.selected": "已选节点", "graph.noselection": "选择一个节点以查看详情。",
    "graph.identifier": "共享标识（电话、地址或银行账户），连接多个实体。",
    "graph.pathfrom": "作为路径起点", "graph.pathto": "作为路径终点", "graph.legend": "图例",
    "graph.member": "团伙成员", "graph.nodelist": "图中节点",
    "ring.title": "团伙", "ring.members": "成员", "ring.evidence": "证据图", "ring.score": "评分",
    "ring.size": "名成员", "ring.money": "涉及金额", "rings.title": "疑似团伙",
    "rings.type": "团伙类型", "rings.min": "最低分", "rings.entity": "包含实体",
    "path.title": "两个实体之间的路径", "path.from": "起点", "path.to": "终点", "path.max": "最大跳数",
    "path.find": "查找路径", "path.found": "经 {n} 跳相连。", "path.notfound": "{n} 跳内无路径。",
    "models.title": "模型", "models.version": "版本", "models.kind": "类型", "models.created": "创建时间",
    "models.champion": "当前冠军", "models.candidate": "候选", "models.features": "特征数",
    "models.metrics": "指标", "models.promote": "设为冠军", "models.promoted": "{v} 已设为冠军模型，下次重新评分时生效。",
    "models.confirm": "将 {v} 设为 {t} 的冠军模型？", "models.report": "图表（校准、特征重要性、SHAP 汇总）见流水线输出目录中的 report.html。",
    "models.detail": "版本详情", "models.calibration": "校准",
    "models.withheld.fraud": "指标不予显示：已确认欺诈标签仅 {n} 个，每类至少需要 {min} 个。",
    "models.withheld.clean": "指标不予显示：已确认非欺诈标签仅 {n} 个，每类至少需要 {min} 个。",
    "err.forbidden": "您的角色无权查看：{msg}", "err.notfound": "未找到：{msg}",
    "err.generic": "请求失败：{msg}", "err.unavailable": "尚未就绪：{msg}",
    "loading": "加载中…", "yes": "是", "no": "否", "masked": "已脱敏",
  },
};

let lang = localStorage.getItem(LANG_KEY) === "zh" ? "zh" : "en";

/** The label for `key` in the current language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = DICT[lang][key] ?? DICT.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function getLang() { return lang; }

export function setLang(value) {
  lang = value === "zh" ? "zh" : "en";
  localStorage.setItem(LANG_KEY, lang);
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

/** Fill every element marked data-i18n (text) or data-i18n-placeholder under `root`. */
export function applyStatic(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
}
