"""The differencing attack on a day of published views (ADR 0016 §11, §13).

Reads what tests/views/attack_data wrote and attacks it as the ADR's attacker: it knows every
publication of every view of the dataset, the p-table's existence sets, k, p, which cells are
withheld (one label for every reason, so it bounds nothing), the relations between views —
derived here from the view definitions, independently of the node's gate: views relate when
they count the same thing, additively for aggregated counts and as distinct units for entities
views and pseudonymised counts — and a map of which
grid cells lie in which municipality, but no true value. For every cell it bounds the true count by linear programming
(HiGHS through highspy, independent of the node's CLP; one model per component, re-solved
from its last basis as only the objective changes) and checks the criteria:

  C0  every cell's true count lies in its interval (the attacker's model is sound);
  C1  every published count y has max S(y) − min S(y) ≥ D, and y is not in 1 … js;
  C2  every THRESHOLD cell's interval covers [1, k − 1]: nothing is revealed beyond "below k";
      and every other protected cell whose true count is below k (THRESHOLD cells the gate
      relabelled SECONDARY) has an interval reaching k: it is not shown to be small;
  C3  every DOMINANCE cell's interval reaches X + UPL above and X − UPL below;
  C4  the national figures (ADR 0018) over the municipality view — closes and revisions — each
      equal the sum of the published cells of the cities they include, with their withheld cells
      counted: differencing national figures, revisions and city cells recovers no withheld value.
      A control written beside them (an aggregator that un-suppresses) must be caught.

  attack.py day.json            asserts C0–C4; prints the figures; exit 1 on a violation
  attack.py --expect-violations day.json
                                the control: the same day published without the gate must
                                violate C2 or C3 (so the attack is shown to find what it looks for)
"""

import json
import math
import sys

import highspy
import numpy as np

EPS = 1e-6
RANK = {"15m": 0, "1h": 1, "1d": 2}


def coarsen(code, metres):
    if len(code) != 10 or code[0] != "E" or code[5] != "N":
        return code
    step = metres // 100
    x, y = int(code[1:5]), int(code[6:10])
    return "E%04dN%04d" % (x - x % step, y - y % step)


def metres_of(dim):
    return {"grid:100m": 100, "grid:500m": 500, "grid:1km": 1000}.get(dim)


def counts_units(data_class, view):
    """Whether the view counts distinct units (entities, or any count of a class but aggregated)
    rather than adding up counters: such views relate non-additively, and only to each other."""
    return data_class != "aggregated" or view.get("measure") == "entities"


def view_relations(views, data_class):
    """(parent, child, [(child dim index, coarsen to metres or None)]) for every pair where each
    parent cell is a sum of child cells: window nested or equal, each parent dimension read
    from a child dimension (equal, or a finer grid), and both counting the same thing."""
    out = []
    for p, vp in enumerate(views):
        for c, vc in enumerate(views):
            if p == c or RANK[vc["window"]] > RANK[vp["window"]]:
                continue
            if counts_units(data_class, vp) != counts_units(data_class, vc):
                continue
            mapping, coarsened = [], False
            for dp in vp["group_by"]:
                found = None
                for j, dc in enumerate(vc["group_by"]):
                    mp, mc = metres_of(dp), metres_of(dc)
                    if mp is not None and mc is not None:
                        if mc <= mp and mp % mc == 0:
                            found = (j, mp if mp != mc else None)
                            break
                    elif dp == dc:
                        found = (j, None)
                        break
                if found is None:
                    mapping = None
                    break
                coarsened |= found[1] is not None
                mapping.append(found)
            if mapping is None:
                continue
            same = (vc["window"] == vp["window"] and not coarsened
                    and len(vc["group_by"]) == len(vp["group_by"]))
            if same and c < p:
                continue
            out.append((p, c, mapping))
    return out


def map_relations(views, data_class):
    """(fine, coarse, fine geo index, grid dimension, [per coarse dim: fine index or None for the
    partner]) for every municipality view (no grid) and grid view (no municipality) whose other
    dimensions the finer-windowed one (either, when the windows are equal) carries: the map
    splits each fine cell into parts per partner, and each coarse cell is made of parts."""
    def geo(v, municipality):
        idx = [j for j, d in enumerate(v["group_by"])
               if (d == "municipality") == municipality and (municipality or metres_of(d))]
        return idx[0] if len(idx) == 1 else None
    out = []
    for m, vm in enumerate(views):
        mj = geo(vm, True)
        if mj is None or geo(vm, False) is not None:
            continue
        for g, vg in enumerate(views):
            gj = geo(vg, False)
            if gj is None or geo(vg, True) is not None:
                continue
            if counts_units(data_class, vm) != counts_units(data_class, vg):
                continue
            for fine, coarse, fine_geo, coarse_geo in ((g, m, gj, mj), (m, g, mj, gj)):
                if RANK[views[fine]["window"]] > RANK[views[coarse]["window"]]:
                    continue
                dims = []
                for j, d in enumerate(views[coarse]["group_by"]):
                    if j == coarse_geo:
                        dims.append(None)
                    elif d in views[fine]["group_by"]:
                        dims.append(views[fine]["group_by"].index(d))
                    else:
                        dims = None
                        break
                if dims is not None:
                    out.append((fine, coarse, fine_geo, vg["group_by"][gj], fine == g, dims))
    return out


def window_of(size, t, day):
    if size == "1d":
        return day[0]
    length = 900000 if size == "15m" else 3600000
    return t - t % length


class Attack:
    def __init__(self, data):
        self.d = data
        self.k = data["k"]
        self.D = data["D"]
        self.js = data["js"]
        self.cells = data["cells"]
        self.views = data["views"]
        self.data_class = data["class"]
        self.existence = {int(y): tuple(v) for y, v in data["existence"].items()}
        index = {}
        for i, c in enumerate(self.cells):
            index[(c["view"], c["start"], tuple(c["group"]))] = i
        # Relation instances: parent cell -> children cells (absent children are 0).
        self.instances = []
        for p, c, mapping in view_relations(self.views, self.data_class):
            by_parent = {}
            for i, cell in enumerate(self.cells):
                if cell["view"] != c:
                    continue
                start = window_of(self.views[p]["window"], cell["start"], data["day"])
                group = tuple(coarsen(cell["group"][j], m) if m else cell["group"][j]
                              for j, m in mapping)
                parent = index.get((p, start, group))
                if parent is not None:
                    by_parent.setdefault(parent, []).append(i)
            self.instances.extend(by_parent.items())
        # The map: parts (variables after the cells) of each fine cell, one per partner.
        municipalities, codes = {}, {}
        for grid, code, municipality in data["map"]:
            municipalities.setdefault((grid, code), []).append(municipality)
            codes.setdefault((grid, municipality), []).append(code)
        self.parts = 0
        for fine, coarse, fine_geo, grid, fine_is_grid, dims in map_relations(self.views,
                                                                              self.data_class):
            collect = {}
            for i, cell in enumerate(self.cells):
                if cell["view"] != fine:
                    continue
                start = window_of(self.views[coarse]["window"], cell["start"], data["day"])
                partners = (municipalities if fine_is_grid else codes).get(
                    (grid, cell["group"][fine_geo]), [])
                parents = []
                for partner in partners:
                    group = tuple(partner if j is None else cell["group"][j] for j in dims)
                    parent = index.get((coarse, start, group))
                    if parent is not None:  # else no such coarse cell: that part is 0
                        parents.append(parent)
                if len(parents) == 1:  # the whole cell lies in its one partner
                    collect.setdefault(parents[0], []).append(i)
                    continue
                split = []
                for parent in parents:
                    part = len(self.cells) + self.parts
                    self.parts += 1
                    split.append(part)
                    collect.setdefault(parent, []).append(part)
                if split:
                    self.instances.append((i, split))
            self.instances.extend(collect.items())
        # Components.
        up = list(range(len(self.cells) + self.parts))

        def root(i):
            while up[i] != i:
                up[i] = up[up[i]]
                i = up[i]
            return i
        for parent, children in self.instances:
            for ch in children:
                up[root(ch)] = root(parent)
        self.component = [root(i) for i in range(len(self.cells) + self.parts)]
        self.members = {}
        for i, r in enumerate(self.component):
            self.members.setdefault(r, []).append(i)
        self.lps = 0

    def bounds(self, i, labels_only):
        if i >= len(self.cells):
            return (0, None)  # a part of a split cell
        c = self.cells[i]
        # Every withheld cell is published with one label (PROTECTION_SUPPRESSED), whatever
        # its reason: the attacker learns nothing from it but that the cell is withheld.
        if "published" not in c or labels_only:
            return (0, None)
        y = c["published"]
        lo, hi = self.existence[y]
        if y > 0:
            lo = max(lo, self.k)  # a published cell is not THRESHOLD
        return (lo, hi)

    def model(self, comp, labels_only):
        members = self.members[comp]
        var = {i: j for j, i in enumerate(members)}
        rows_eq, rows_ub = [], []  # every right-hand side is 0
        for parent, children in self.instances:
            if self.component[parent] != comp:
                continue
            row = {var[parent]: 1.0}
            for ch in children:
                row[var[ch]] = row.get(var[ch], 0.0) - 1.0
            # Related views count the same thing: the parent's view says which.
            if not counts_units(self.data_class, self.views[self.cells[parent]["view"]]):
                rows_eq.append(row)
            else:
                rows_ub.append(row)  # parent − Σ children ≤ 0
                for ch in children:  # child − parent ≤ 0
                    rows_ub.append({var[ch]: 1.0, var[parent]: -1.0})
        return {
            "var": var,
            "rows": [(row, 0.0, 0.0) for row in rows_eq] +
                    [(row, -highspy.kHighsInf, 0.0) for row in rows_ub],
            "bounds": [self.bounds(i, labels_only) for i in members],
        }

    def solver(self, m):
        """The component's model in HiGHS, kept for every bound asked of it: only the objective
        changes between them, so each solve starts from the previous basis."""
        if "highs" not in m:
            h = highspy.Highs()
            h.setOptionValue("output_flag", False)
            lower = np.array([b[0] for b in m["bounds"]], dtype=np.float64)
            upper = np.array([highspy.kHighsInf if b[1] is None else b[1]
                              for b in m["bounds"]], dtype=np.float64)
            h.addVars(len(lower), lower, upper)
            for row, lo, hi in m["rows"]:
                h.addRow(lo, hi, len(row), np.array(list(row.keys()), dtype=np.int32),
                         np.array(list(row.values()), dtype=np.float64))
            m["highs"] = h
        return m["highs"]

    def bound(self, m, i):
        h = self.solver(m)
        j = m["var"][i]
        out = []
        h.changeColCost(j, 1.0)
        for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
            h.changeObjectiveSense(sense)
            h.run()
            self.lps += 1
            status = h.getModelStatus()
            if status == highspy.HighsModelStatus.kUnbounded:
                out.append(math.inf)
                continue
            if status != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError("LP for cell %d: %s" % (i, h.modelStatusToString(status)))
            out.append(h.getInfo().objective_function_value)
        h.changeColCost(j, 0.0)
        return out[0], out[1]

    def run(self):
        fails = {"C0": [], "C1": [], "C2": [], "C3": []}
        figures = {"threshold": 0, "dominance": 0, "published": 0, "label_narrowed": 0, "small_relabelled": 0,
                   "smallest_c2_interval": None, "smallest_c3_margin": None, "c0_checked": 0}
        # C1: the p-table alone.
        for i, c in enumerate(self.cells):
            if "published" in c:
                figures["published"] += 1
                y = c["published"]
                lo, hi = self.existence[y]
                if 1 <= y <= self.js or (y > 0 and hi - lo < self.D):
                    fails["C1"].append((i, y, lo, hi))
        models = {}

        def get(comp, labels_only):
            key = (comp, labels_only)
            if key not in models:
                models[key] = self.model(comp, labels_only)
            return models[key]
        for i, c in enumerate(self.cells):
            protected = c["protection"] != "NONE"
            comp = self.component[i]
            if not protected and (len(self.members[comp]) == 1 or i % 5 != 0):
                # Published cells: their interval is within S(y), which C1 covers; C0 (the
                # attacker's model is sound) is sampled on every fifth related one.
                continue
            lo, hi = self.bound(get(comp, False), i)
            lo_i, hi_i = math.ceil(lo - EPS), (math.floor(hi + EPS) if hi != math.inf else hi)
            figures["c0_checked"] += 1
            if not lo_i <= c["truth"] <= hi_i:
                fails["C0"].append((i, c["truth"], lo_i, hi_i))
            if c["protection"] == "THRESHOLD":
                figures["threshold"] += 1
                if lo_i > 1 or hi_i < self.k - 1:
                    fails["C2"].append((i, "THRESHOLD", c["truth"], lo_i, hi_i))
                    # The labels alone (published values unknown): could values have helped?
                    rlo, rhi = self.bound(get(comp, True), i)
                    if (math.ceil(rlo - EPS), math.floor(rhi + EPS)) != (1, self.k - 1):
                        figures["label_narrowed"] += 1
                width = hi_i - lo_i
                if figures["smallest_c2_interval"] is None or width < figures["smallest_c2_interval"][0]:
                    figures["smallest_c2_interval"] = (width, lo_i, hi_i)
            elif protected and 1 <= c["truth"] <= self.k - 1:
                figures["small_relabelled"] += 1
                if hi_i < self.k:
                    fails["C2"].append((i, c["protection"], c["truth"], lo_i, hi_i))
            if c["protection"] == "DOMINANCE" and c["upl"] > 0:
                figures["dominance"] += 1
                x, upl = c["truth"], c["upl"]
                margin = min(hi - x - upl, x - lo - upl)
                if margin < -EPS:
                    fails["C3"].append((i, x, upl, lo, hi))
                if figures["smallest_c3_margin"] is None or margin < figures["smallest_c3_margin"]:
                    figures["smallest_c3_margin"] = margin
        figures["lps"] = self.lps
        return fails, figures


def municipality_view(data):
    return next(i for i, v in enumerate(data["views"]) if v["id"] == "hmun")


def national_differences(data, key):
    """The national figures (ADR 0018) against the published municipality cells they combine:
    a national value is the sum of the published values of the cities it includes, and its
    withheld count the number of their withheld cells — so differencing national figures,
    revisions and city cells recovers nothing that was not published. Returns the figures whose
    value differs (what differencing would recover: a withheld value)."""
    hmun = municipality_view(data)
    by_hour = {}
    for c in data["cells"]:
        if c["view"] == hmun:
            by_hour.setdefault(c["start"], {}).setdefault(c["group"][0], []).append(c)
    found = []
    for f in data[key]:
        parts = by_hour.get(f["start"], {})
        published = [c["published"] for city in f["cities"] for c in parts.get(city, [])
                     if "published" in c]
        withheld = sum(1 for city in f["cities"] for c in parts.get(city, []) if "published" not in c)
        expected = float(sum(published)) if published else None
        value = f["value"]
        same = (value is None and expected is None) or (
            value is not None and expected is not None and abs(value - expected) < EPS)
        if not same or f["withheld"] != withheld:
            found.append((f["start"], f["revision"], value, expected,
                          None if value is None or expected is None else value - expected))
    return found


def main(argv):
    expect_violations = "--expect-violations" in argv
    paths = [a for a in argv[1:] if not a.startswith("--")]
    if len(paths) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.load(open(paths[0]))
    attack = Attack(data)
    fails, figures = attack.run()
    protections = {}
    for c in data["cells"]:
        protections[c["protection"]] = protections.get(c["protection"], 0) + 1
    print("%s day, gate %s, seed %d: %d records, %d cells %s, %d relation instances" % (
        data["class"], "on" if data["gate"] else "off", data["seed"], data["records"],
        len(data["cells"]), protections, len(attack.instances)))
    print("  gate: %s" % data["gate_report"])
    print("  attack: %s" % figures)
    fails["C4"] = national_differences(data, "national")
    leaked = national_differences(data, "national_leaky")
    revisions = sum(1 for f in data["national"] if f["revision"] > 0)
    print("  national: %d figures (%d revisions) over %d municipality cells; the control that "
          "un-suppresses is caught on %d" % (len(data["national"]), revisions,
                                             sum(1 for c in data["cells"]
                                                 if c["view"] == municipality_view(data)),
                                             len(leaked)))
    entities = [c for c in data["cells"]
                if data["views"][c["view"]].get("measure") == "entities"]
    shown = [c["published"] for c in entities if "published" in c]
    print("  entities reporting (feed quality): %d cells, %d published (%s … %s), %d withheld" % (
        len(entities), len(shown), min(shown, default=None), max(shown, default=None),
        len(entities) - len(shown)))
    for name, found in fails.items():
        print("  %s violations: %d %s" % (name, len(found), found[:5]))
    if not entities:
        print("FAIL: the day has no entities view to attack", file=sys.stderr)
        return 1
    if not data["national"] or revisions == 0:
        print("FAIL: no national figure or no revision to check", file=sys.stderr)
        return 1
    if not leaked and any("published" not in c for c in data["cells"]
                          if c["view"] == municipality_view(data)):
        print("FAIL: the un-suppressing control was not caught", file=sys.stderr)
        return 1
    if expect_violations:
        if not (fails["C2"] or fails["C3"]):
            print("FAIL: without the gate the attack found no C2 or C3 violation", file=sys.stderr)
            return 1
        if fails["C0"] or fails["C1"] or fails["C4"]:
            print("FAIL: C0/C1/C4 violated without the gate", file=sys.stderr)
            return 1
        return 0
    if any(fails.values()):
        print("FAIL: protection criteria violated", file=sys.stderr)
        return 1
    if figures["threshold"] == 0 or (data["class"] == "aggregated" and figures["dominance"] == 0):
        print("FAIL: the day has no THRESHOLD (or, aggregated, no DOMINANCE) cell to attack",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
