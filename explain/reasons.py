"""Reason codes: the features that pushed a score up, in plain English and Chinese."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

# feature -> (English, Chinese) templates; {v} is the entity's value.
TEMPLATES: dict[str, tuple[str, str]] = {
    "visits": ("{v:.0f} clinic visits in the period", "期内就诊 {v:.0f} 次"),
    "distinct_clinics": ("visited {v:.0f} different clinics", "在 {v:.0f} 家医疗机构就诊"),
    "max_clinics_one_day": ("visited {v:.0f} clinics on a single day", "单日在 {v:.0f} 家医疗机构就诊"),
    "days_multi_clinic": ("{v:.0f} days with visits to 2 or more clinics", "{v:.0f} 天同日多院就诊"),
    "max_clinics_one_month": ("{v:.0f} clinics in one month", "单月就诊机构 {v:.0f} 家"),
    "visits_after_death": ("{v:.0f} visits after the recorded death date", "死亡日期后就诊 {v:.0f} 次"),
    "purchases_after_death": ("{v:.0f} pharmacy purchases after the death date", "死亡日期后购药 {v:.0f} 次"),
    "benefits_after_death": ("{v:,.0f} yuan of benefits paid after death", "死亡后领取待遇 {v:,.0f} 元"),
    "unemployment_while_contributing": ("unemployment benefit in {v:.0f} months with contributions paid",
                                        "{v:.0f} 个月在缴费同时领取失业金"),
    "same_day_visit_purchase_days": ("{v:.0f} days with a clinic visit and a pharmacy purchase the same day",
                                     "{v:.0f} 天同日就诊并购药"),
    "max_days_supply": ("a purchase of {v:.0f} days' supply", "单次购药 {v:.0f} 天用量"),
    "total_days_supply": ("{v:.0f} days of medicine bought in the period", "期内购药共 {v:.0f} 天用量"),
    "shares_phone_with": ("shares a phone number with {v:.0f} other persons or employers", "与 {v:.0f} 个主体共用电话"),
    "shares_address_with": ("shares an address with {v:.0f} other persons or employers", "与 {v:.0f} 个主体共用地址"),
    "shares_bank_account_with": ("shares a bank account with {v:.0f} other persons or employers",
                                 "与 {v:.0f} 个主体共用银行账户"),
    "inpatient_stays": ("{v:.0f} inpatient stays", "住院 {v:.0f} 次"),
    "arrears_months": ("{v:.0f} months of contributions in arrears", "欠缴社保 {v:.0f} 个月"),
    "paid_share": ("paid {v:.0%} of contributions due", "社保缴费率 {v:.0%}"),
    "insured_over_employed": ("insured headcount {v:.1f}x the employment records", "参保人数为用工记录的 {v:.1f} 倍"),
    "top_pharmacy_share": ("{v:.0%} of its same-day patient purchases go to a single pharmacy",
                           "{v:.0%} 的同日购药集中于一家药店"),
    "top_clinic_share": ("{v:.0%} of its same-day customers come from a single clinic", "{v:.0%} 的同日顾客来自一家医疗机构"),
    "same_day_pharmacy_share": ("{v:.0%} of its visits are followed by a same-day pharmacy purchase",
                                "{v:.0%} 的就诊同日购药"),
    "multi_clinic_day_visits": ("{v:.0%} of its visits are by patients seen at another clinic the same day",
                                "{v:.0%} 的就诊者同日在他院就诊"),
    "ring_score": ("member of a suspected ring (score {v:.2f})", "疑似团伙成员（团伙评分 {v:.2f}）"),
    "rings": ("member of {v:.0f} suspected rings", "属于 {v:.0f} 个疑似团伙"),
    "rule_hits": ("{v:.0f} rule hits", "触发 {v:.0f} 条规则"),
    "rule_severity_max": ("a rule of severity {v:.0f} fired", "触发严重程度 {v:.0f} 的规则"),
    "rule_severity_sum": ("rule hits of total severity {v:.0f}", "触发规则严重程度合计 {v:.0f}"),
    "labelled_neighbour_share": ("{v:.0%} of its linked entities were confirmed as fraud", "{v:.0%} 的关联主体被认定欺诈"),
}


def describe(feature: str, value: object) -> tuple[str, str]:
    """Plain-language English and Chinese text for one feature value."""
    tpl = TEMPLATES.get(feature)
    if tpl is not None and isinstance(value, (int, float, np.number)) and not pd.isna(value):
        return tpl[0].format(v=float(value)), tpl[1].format(v=float(value))
    shown = "missing" if value is None or (isinstance(value, float) and pd.isna(value)) else value
    if isinstance(shown, float):
        shown = f"{shown:.4g}"
    if feature.startswith("nb_"):
        return (f"linked entities' {feature[3:]} is {shown}", f"关联主体的 {feature[3:]} 为 {shown}")
    if feature.startswith("rule_"):
        return (f"rule {feature[5:]} fired", f"触发规则 {feature[5:]}")
    return f"{feature} is {shown}", f"{feature} 为 {shown}"


def _value(v: object) -> object:
    if isinstance(v, (np.floating, float)):
        return None if pd.isna(v) else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)


def reasons_from_contributions(contrib: pd.DataFrame, X: pd.DataFrame, top: int) -> pd.Series:
    """JSON list of the `top` features raising each row's score, or lowering it when none raise it."""
    values = contrib.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :top]
    lowest = np.argsort(values, axis=1, kind="stable")[:, :top]
    cols = np.asarray(contrib.columns)
    out = []
    for i, row in enumerate(order):
        items = []
        # An entity with nothing raising its risk is explained by what lowers it most.
        raising = values[i, row[0]] > 0 if len(row) else False
        for j in (row if raising else lowest[i]):
            c = float(values[i, j])
            if (c <= 0) if raising else (c >= 0):
                break
            f = str(cols[j])
            v = X.iat[i, X.columns.get_loc(f)]
            en, zh = describe(f, v)
            items.append({"feature": f, "value": _value(v), "contribution": round(c, 4), "text": en, "text_zh": zh})
        out.append(json.dumps(items, ensure_ascii=False))
    return pd.Series(out, index=contrib.index)


def deviation_contributions(X: pd.DataFrame) -> pd.DataFrame:
    """Robust z-scores (how far above its type's median each value is), for unlabelled types."""
    num = X.select_dtypes(include=[np.number]).astype(np.float64)
    med = num.median()
    mad = (num - med).abs().median().replace(0, np.nan)
    spread = mad.fillna(num.std().replace(0, np.nan)).fillna(1.0)
    return ((num - med) / spread).fillna(0).clip(lower=0) / 10.0
