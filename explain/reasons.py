"""Reason codes: the features that pushed a score up, in plain English and Chinese.

A template may name the entity's context (`{top_pharmacy}`, `{ring}`, ...): per-entity text the
scorer knows (the pharmacy a clinic's patients buy at, the ring an entity belongs to). Context
is optional; without it the template's generic wording is used (`CONTEXT_DEFAULTS`).
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from scoring.score import EntityScores

# feature -> (English, Chinese) templates; {v} is the entity's value, {name} a context field.
TEMPLATES: dict[str, tuple[str, str]] = {
    "visits": ("{v:.0f} clinic visits in the period", "期内就诊 {v:.0f} 次"),
    "distinct_clinics": ("visited {v:.0f} different clinics", "在 {v:.0f} 家医疗机构就诊"),
    "max_clinics_one_day": ("visited {v:.0f} clinics on a single day", "单日在 {v:.0f} 家医疗机构就诊"),
    "days_multi_clinic": ("{v:.0f} days with visits to 2 or more clinics", "{v:.0f} 天同日多院就诊"),
    "max_clinics_one_month": ("{v:.0f} clinics in one month", "单月就诊机构 {v:.0f} 家"),
    "visits_after_death": ("{v:.0f} visits after the recorded death date", "死亡日期后就诊 {v:.0f} 次"),
    "purchases_after_death": ("{v:.0f} pharmacy purchases after the death date", "死亡日期后购药 {v:.0f} 次"),
    "benefits_after_death": ("{v:,.0f} yuan of benefits paid after death", "死亡后领取待遇 {v:,.0f} 元"),
    "unemployment_while_contributing": (
        "unemployment benefit in {v:.0f} months with contributions paid",
        "{v:.0f} 个月在缴费同时领取失业金",
    ),
    "same_day_visit_purchase_days": (
        "{v:.0f} days with a clinic visit and a pharmacy purchase the same day",
        "{v:.0f} 天同日就诊并购药",
    ),
    "top_pair_same_days": (
        "visited one clinic and bought at one pharmacy on the same day on {v:.0f} days",
        "{v:.0f} 天在同一医疗机构就诊并同日在同一药店购药",
    ),
    "max_days_supply": ("a purchase of {v:.0f} days' supply", "单次购药 {v:.0f} 天用量"),
    "total_days_supply": ("{v:.0f} days of medicine bought in the period", "期内购药共 {v:.0f} 天用量"),
    "purchase_amount": ("{v:,.0f} yuan of pharmacy purchases", "购药金额 {v:,.0f} 元"),
    "visit_amount": ("{v:,.0f} yuan of clinic visits", "就诊金额 {v:,.0f} 元"),
    "shares_phone_with": ("shares a phone number with {v:.0f} other persons or employers", "与 {v:.0f} 个主体共用电话"),
    "shares_address_with": ("shares an address with {v:.0f} other persons or employers", "与 {v:.0f} 个主体共用地址"),
    "shares_bank_account_with": (
        "shares a bank account with {v:.0f} other persons or employers",
        "与 {v:.0f} 个主体共用银行账户",
    ),
    "inpatient_stays": ("{v:.0f} inpatient stays", "住院 {v:.0f} 次"),
    "arrears_months": ("{v:.0f} months of contributions in arrears", "欠缴社保 {v:.0f} 个月"),
    "paid_share": ("paid {v:.0%} of contributions due", "社保缴费率 {v:.0%}"),
    "insured_over_employed": ("insured headcount {v:.1f}x the employment records", "参保人数为用工记录的 {v:.1f} 倍"),
    "top_pharmacy_share": (
        "{v:.0%} of its same-day patient purchases go to {top_pharmacy}",
        "{v:.0%} 的同日购药集中于{top_pharmacy}",
    ),
    "top_pharmacy_patient_share": (
        "{v:.0%} of this clinic's patients bought at {top_pharmacy} the same day as a visit",
        "{v:.0%} 的就诊者就诊当日在{top_pharmacy}购药",
    ),
    "top_pharmacy_repeat_patients": (
        "{v:.0f} patients repeatedly visited here and bought at {top_pharmacy} the same day",
        "{v:.0f} 名就诊者多次在本机构就诊并同日在{top_pharmacy}购药",
    ),
    "top_clinic_share": (
        "{v:.0%} of its same-day customers come from {top_clinic}",
        "{v:.0%} 的同日顾客来自{top_clinic}",
    ),
    "top_clinic_customer_share": (
        "{v:.0%} of this pharmacy's customers bought here the same day as a visit to {top_clinic}",
        "{v:.0%} 的顾客在{top_clinic}就诊当日来此购药",
    ),
    "top_clinic_repeat_customers": (
        "{v:.0f} customers repeatedly visited {top_clinic} and bought here the same day",
        "{v:.0f} 名顾客多次在{top_clinic}就诊并同日来此购药",
    ),
    "same_day_pharmacy_share": (
        "{v:.0%} of its visits are followed by a same-day pharmacy purchase",
        "{v:.0%} 的就诊同日购药",
    ),
    "same_day_clinic_share": (
        "{v:.0%} of its purchases follow a same-day clinic visit",
        "{v:.0%} 的购药发生在就诊当日",
    ),
    "multi_clinic_day_visits": (
        "{v:.0%} of its visits are by patients seen at another clinic the same day",
        "{v:.0%} 的就诊者同日在他院就诊",
    ),
    "max_daily_admissions_per_bed": (
        "admitted {v:.1f} inpatients per bed on its busiest day",
        "单日入院人数为床位数的 {v:.1f} 倍",
    ),
    "ring_score": ("member of a suspected ring (score {v:.2f})", "疑似团伙成员（团伙评分 {v:.2f}）"),
    "rings": ("member of {ring}", "属于{ring}"),
    "ring_size_max": ("member of {ring}", "属于{ring}"),
    "rule_hits": ("{v:.0f} rule hits", "触发 {v:.0f} 条规则"),
    "rule_severity_max": ("a rule of severity {v:.0f} fired", "触发严重程度 {v:.0f} 的规则"),
    "rule_severity_sum": ("rule hits of total severity {v:.0f}", "触发规则严重程度合计 {v:.0f}"),
    "labelled_neighbour_share": (
        "{v:.0%} of its directly linked, already investigated entities were confirmed as fraud",
        "{v:.0%} 的直接关联且已核查主体被认定欺诈",
    ),
    "labelled_2hop_share": (
        "{v:.0%} of the investigated entities it shares a clinic, pharmacy, employer or "
        "identifier with were confirmed as fraud",
        "与其共用机构或身份信息的已核查主体中 {v:.0%} 被认定欺诈",
    ),
    "confirmed_fraud_sharing_phone": (
        "shares a phone number with {v:.0f} persons or employers confirmed as fraud",
        "与 {v:.0f} 个已认定欺诈的主体共用电话",
    ),
    "confirmed_fraud_sharing_bank_account": (
        "shares a bank account with {v:.0f} persons or employers confirmed as fraud",
        "与 {v:.0f} 个已认定欺诈的主体共用银行账户",
    ),
    "confirmed_fraud_sharing_address": (
        "shares an address with {v:.0f} persons or employers confirmed as fraud",
        "与 {v:.0f} 个已认定欺诈的主体共用地址",
    ),
}

# Wording used instead of TEMPLATES when the row's context has every field the wording names.
CONTEXT_TEMPLATES: dict[str, tuple[str, str]] = {
    "top_pair_same_days": (
        "visited {pair_clinic} and bought at {pair_pharmacy} on the same day on {v:.0f} days",
        "{v:.0f} 天在{pair_clinic}就诊并同日在{pair_pharmacy}购药",
    ),
    "same_day_visit_purchase_days": (
        "{v:.0f} days with a clinic visit and a pharmacy purchase the same day, {pair_days:.0f} of them at "
        "{pair_clinic} and {pair_pharmacy}",
        "{v:.0f} 天同日就诊并购药，其中 {pair_days:.0f} 天在{pair_clinic}就诊并在{pair_pharmacy}购药",
    ),
}

# Ring type -> (English, Chinese) description of a membership (features ring_<type>).
RING_TYPES: dict[str, tuple[str, str]] = {
    "collusion": ("a suspected clinic-pharmacy collusion ring", "疑似医药串通团伙"),
    "identity": ("a suspected identity ring (shared phones or bank accounts)", "疑似共用身份信息团伙"),
    "broker": ("a suspected card-broker ring", "疑似药贩子收卡团伙"),
    "enrolment": ("a suspected fake-enrolment scheme", "疑似虚假参保（挂靠）团伙"),
    "facility": (
        "a suspected facility fraud cluster (split admissions, phantom stays or over-prescribing)",
        "疑似机构违规聚集（分解住院、挂床或超量开药）",
    ),
}

# Context field -> (English, Chinese) wording used when the scorer gave no value for it.
CONTEXT_DEFAULTS: dict[str, tuple[str, str]] = {
    "top_pharmacy": ("a single pharmacy", "同一家药店"),
    "top_clinic": ("a single clinic", "同一家医疗机构"),
    "pair_clinic": ("one clinic", "同一家医疗机构"),
    "pair_pharmacy": ("one pharmacy", "同一家药店"),
    "ring": ("a suspected ring", "疑似团伙"),
}


class _Fields(dict[str, Any]):
    """Format fields: the row's context, else the language's default wording."""

    def __init__(self, context: Mapping[str, object], lang: int) -> None:
        super().__init__()
        self.context = context
        self.lang = lang

    def __missing__(self, key: str) -> object:
        value = self.context.get(key)
        if isinstance(value, (tuple, list)) and len(value) == 2:
            value = value[self.lang]
        if not _present(value):
            return CONTEXT_DEFAULTS.get(key, ("?", "?"))[self.lang]
        return value


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and value != ""


def describe(
    feature: str,
    value: object,
    context: Mapping[str, object] | None = None,
    rule_titles: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[str, str]:
    """Plain-language English and Chinese text for one feature value (context: see module doc)."""
    context = context or {}
    tpl = CONTEXT_TEMPLATES.get(feature)
    if tpl is None or not all(_present(context.get(k)) for k in _fields(tpl[0]) if k != "v"):
        tpl = TEMPLATES.get(feature)
    numeric = isinstance(value, (int, float, np.number)) and not pd.isna(value)
    if tpl is not None and numeric:
        v = float(value)  # type: ignore[arg-type]
        return tpl[0].format_map(_Fields({**context, "v": v}, 0)), tpl[1].format_map(_Fields({**context, "v": v}, 1))
    shown = "missing" if value is None or (isinstance(value, float) and pd.isna(value)) else value
    if isinstance(shown, float):
        shown = f"{shown:.4g}"
    if feature.startswith("ring_") and feature[5:] in RING_TYPES:
        if context.get("ring_type") == feature[5:] and context.get("ring"):
            return describe("rings", 1.0, context)  # the same text as the entity's ring: merged
        en, zh = RING_TYPES[feature[5:]]
        return f"member of {en}", f"属于{zh}"
    if feature.startswith("nb_"):
        return (f"linked entities' {feature[3:]} is {shown}", f"关联主体的 {feature[3:]} 为 {shown}")
    if feature.startswith("rule_"):
        title = (rule_titles or {}).get(feature[5:])
        if title:
            return f"rule fired: {title[0]}", f"触发规则：{title[1]}"
        return (f"rule {feature[5:]} fired", f"触发规则 {feature[5:]}")
    return f"{feature} is {shown}", f"{feature} 为 {shown}"


def _value(v: object) -> object:
    if isinstance(v, (np.floating, float)):
        return None if pd.isna(v) else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)


def reasons_from_contributions(
    contrib: pd.DataFrame,
    X: pd.DataFrame,
    top: int,
    *,
    context: pd.DataFrame | None = None,
    rule_titles: Mapping[str, tuple[str, str]] | None = None,
) -> pd.Series:
    """JSON list of the `top` features raising each row's score (positive contributions only).

    `context` (rows like `contrib`, text columns) fills templates' context fields; reasons whose
    text repeats an earlier one of the same row (two ring features naming the same ring) are
    merged into the first, their contributions added.
    """
    values = contrib.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, : 2 * top]
    cols = np.asarray(contrib.columns)
    ctx = (
        context.reindex(contrib.index).to_dict("records")
        if context is not None and len(context.columns)
        else [{}] * len(contrib)
    )
    xcols: dict[str, np.ndarray | None] = {}  # a feature's values, taken out of X when first needed

    def value(f: str, i: int) -> object:
        if f not in xcols:
            xcols[f] = X[f].to_numpy() if f in X.columns else None
        column = xcols[f]
        return None if column is None else column[i]

    out = []
    for i, row in enumerate(order):
        items: list[dict[str, Any]] = []
        seen: dict[str, dict[str, Any]] = {}
        for j in row:
            c = float(values[i, j])
            if c <= 0 or len(items) >= top:
                break
            f = str(cols[j])
            v = value(f, i)
            en, zh = describe(f, v, ctx[i], rule_titles)
            if en in seen:
                seen[en]["contribution"] = round(seen[en]["contribution"] + c, 4)
                continue
            item = {"feature": f, "value": _value(v), "contribution": round(c, 4), "text": en, "text_zh": zh}
            seen[en] = item
            items.append(item)
        out.append(json.dumps(items, ensure_ascii=False))
    return pd.Series(out, index=contrib.index)


def entity_reasons(
    scores: EntityScores,
    context: pd.DataFrame | None,
    per_entity: int,
    rule_titles: Mapping[str, tuple[str, str]] | None,
) -> pd.Series:
    """The reasons column of one type's scores: words for the contributions of the explained
    (riskiest) rows, "[]" for the rest, and on every capped row the cap with the rule that set it."""
    table = scores.table
    ids = pd.Index(table["entity_id"])
    reasons = pd.Series("[]", index=ids)
    if scores.contributions is not None and scores.explained_X is not None and len(scores.contributions):
        contrib = scores.contributions
        reasons.loc[contrib.index] = reasons_from_contributions(
            contrib,
            scores.explained_X.reindex(columns=contrib.columns),
            per_entity,
            context=context,
            rule_titles=rule_titles,
        )
    final = pd.Series(table["grade"].to_numpy(), index=ids)
    capped = final != pd.Series(table["score_grade"].to_numpy(), index=ids)
    if capped.any():
        cap = pd.Series(table["grade_cap"].to_numpy(), index=ids)
        cap_rule = scores.cap_rule if scores.cap_rule is not None else pd.Series("", index=ids)
        reasons.loc[capped] = [
            json.dumps(
                json.loads(r)
                + [
                    {
                        "feature": "grade_cap",
                        "value": c,
                        "contribution": None,
                        "text": f"grade capped at {c} by rule {rid}",
                        "text_zh": f"规则 {rid} 将等级限定为 {c}",
                    }
                ],
                ensure_ascii=False,
            )
            for r, c, rid in zip(reasons[capped], cap[capped], cap_rule.reindex(ids)[capped])
        ]
    return reasons
