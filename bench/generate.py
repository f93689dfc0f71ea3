"""Fill a benchmark database with N UserTaskRuns and their events, fast (PostgreSQL COPY).

    python bench/generate.py 10k|100k|1m [--seed 7] [--chunk 50000] [--if-missing]

Creates the database tm_bench_<size> on the local server when it is missing, migrates it, then
replaces its contents (every usertasks table, users, groups, sessions) with:

- 8 task types in 1–3 versions (15 UserTaskDefs, created through services.put_user_task_def);
  later versions add a field; a run pins the version that was current at its time;
- 20 groups of very different sizes (Zipf-like), 2000 users, each in one group, a quarter of them
  in a second one; inside a group a few users do most of the work;
- N runs spread over the last 365 days (ids grow with scheduled_time, as they do in life); old
  runs are mostly DONE (8% CANCELLED), the last weeks hold the open ones (UNASSIGNED, ASSIGNED);
  a fifth are started directly for a user, the rest for a group and claimed; one group
  (logistics) was retired two months into the year, so its runs are all old; DONE runs carry an
  `output` valid for their def, CANCELLED ones a `failure`;
- 2–5 events per run (ASSIGNED at start, the claim, saves, comments, COMPLETED / CANCELLED),
  about 3 per run on average, in time order per run;
- Django users for every user_id (password "bench"), groups for every user_group, and
  `bench-admin` (superuser, for the API token and the audit pages).

Rows are written in chunks (one COPY per table per chunk, one transaction per chunk); the
search indexes are dropped before the load and rebuilt after it (much faster than maintaining
21 indexes row by row), and foreign-key triggers are off during the load (the rows are
consistent by construction). Then VACUUM ANALYZE. 1M runs take a few minutes on 2 cores.
"""

import argparse
import bisect
import itertools
import json
import math
import os
import random
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, SERVER, SIZES, bench_env, db_name, size_label, setup_django  # noqa: E402

# name, share of runs, versions, fields [(name, type, required)] of version 0; version v adds
# an optional STR field "remark_v<v>".
TASK_TYPES = [
    ("it-request", 24, 2, [("requestedItem", "STR", True), ("justification", "STR", False)]),
    ("approve-funds-for-mission", 14, 2,
     [("amount", "DOUBLE", True), ("approved", "BOOL", True), ("reason", "STR", False)]),
    ("expense-approval", 20, 3, [("amount", "DOUBLE", True), ("category", "STR", True), ("approved", "BOOL", True)]),
    ("access-review", 12, 1, [("system", "STR", True), ("keepAccess", "BOOL", True)]),
    ("contract-review", 10, 2, [("counterparty", "STR", True), ("riskScore", "INT", True), ("comments", "STR", False)]),
    ("onboarding-checklist", 8, 1, [("laptopIssued", "BOOL", True), ("badgeIssued", "BOOL", True)]),
    ("purchase-order", 8, 2, [("supplier", "STR", True), ("quantity", "INT", True), ("unitPrice", "DOUBLE", True)]),
    ("incident-postmortem", 4, 2, [("severity", "INT", True), ("summary", "STR", True), ("followUp", "STR", False)]),
]
GROUPS = [
    "finance", "it-support", "hr", "procurement", "engineering", "sales-ops", "legal", "security",
    "facilities", "customer-success", "compliance", "payroll", "marketing", "data-platform", "devops",
    "treasury", "qa", "research", "audit", "logistics",
]  # fmt: skip
# A team that was reorganised away: its runs (and its members' own runs) all date from the first
# two months of the year. Its members' "All visible" inbox is the worst case of the OR shape.
RETIRED_GROUP = "logistics"
N_USERS = 2000
WORDS = ["laptop", "monitor", "licence", "travel", "training", "server", "badge", "chair", "phone", "vpn",
         "renewal", "invoice", "urgent", "quarterly", "audit", "vendor", "upgrade", "replacement"]  # fmt: skip
ENGINE = "wf-engine"
DAY = 86400.0

RUN_COLUMNS = (
    "id", "user_task_guid", "user_task_def_name", "status", "user_id", "user_group", "results", "notes",
    "scheduled_time", "epoch", "on_cancellation_exception_name", "actions", "output", "failure", "updated_at",
    "user_task_def_id", "wf_run_id",
)  # fmt: skip
EVENT_COLUMNS = ("id", "time", "type", "actor", "payload", "user_task_run_id")
WFRUN_COLUMNS = ("id", "callback_url", "created_at")
RESULTS = REPO / "var" / "bench"
LOADED_TABLES = ("usertasks_usertaskrun", "usertasks_usertaskevent", "usertasks_wfrun")


def _esc(text: str) -> str:
    """A value for COPY's text format (JSON escapes contain backslashes)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _ts(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc).isoformat(sep=" ")


def _json(value) -> str:
    return _esc(json.dumps(value, separators=(",", ":")))


def _cum(weights):
    return list(itertools.accumulate(weights))


class World:
    """Who exists: defs, groups, users; and how to draw a run's type, version, group and user."""

    def __init__(self, rng: random.Random, defs: dict[tuple[str, int], tuple[int, list]]):
        self.rng = rng
        self.defs = defs  # (name, version) -> (def id, fields)
        self.type_names = [t[0] for t in TASK_TYPES]
        self.type_cum = _cum(t[1] for t in TASK_TYPES)
        self.versions = {t[0]: t[2] for t in TASK_TYPES}
        self.group_cum = _cum(1 / (i + 1) ** 0.9 for i in range(len(GROUPS)))
        self.users = [f"user-{i:04d}" for i in range(N_USERS)]
        # Each user's first group follows the groups' sizes; a quarter get a second group.
        self.members: dict[str, list[str]] = {g: [] for g in GROUPS}
        self.user_groups: dict[str, list[str]] = {}
        for user in self.users:
            first = self._draw_group()
            groups = [first]
            if rng.random() < 0.25:
                second = self._draw_group()
                if second != first:
                    groups.append(second)
            self.user_groups[user] = groups
            for g in groups:
                self.members[g].append(user)
        # A few members of a group do most of its work.
        self.member_cum = {g: _cum(1 / (i + 1) ** 0.8 for i in range(len(m))) for g, m in self.members.items()}

    def _draw_group(self) -> str:
        return GROUPS[bisect.bisect_left(self.group_cum, self.rng.random() * self.group_cum[-1])]

    def draw_group(self) -> str:
        return self._draw_group()

    def draw_member(self, group: str) -> str:
        cum = self.member_cum[group]
        return self.members[group][bisect.bisect_left(cum, self.rng.random() * cum[-1])]

    def draw_type(self, year_fraction: float) -> tuple[str, int]:
        name = self.type_names[bisect.bisect_left(self.type_cum, self.rng.random() * self.type_cum[-1])]
        versions = self.versions[name]
        # The current version when the run started; a few runs still start on the previous one.
        version = min(versions - 1, int(year_fraction * versions))
        if version > 0 and self.rng.random() < 0.1:
            version -= 1
        return name, version

    def value(self, ftype: str):
        rng = self.rng
        if ftype == "STR":
            return " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
        if ftype == "INT":
            return rng.randint(1, 100)
        if ftype == "DOUBLE":
            return round(rng.uniform(10, 20000), 2)
        return rng.random() < 0.7

    def results(self, fields: list, *, complete: bool) -> dict:
        out = {}
        for name, ftype, required in fields:
            if complete and (required or self.rng.random() < 0.5):
                out[name] = self.value(ftype)
            elif not complete and self.rng.random() < 0.5:
                out[name] = self.value(ftype)
        return out


def def_fields(name: str, version: int) -> list:
    base = next(t[3] for t in TASK_TYPES if t[0] == name)
    return list(base) + [(f"remark_v{v}", "STR", False) for v in range(1, version + 1)]


def create_database(label: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name(label)]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db_name(label)}"')
            print(f"created database {db_name(label)}")
    env = {**bench_env(label), "DJANGO_DEBUG": "1", "DJANGO_SETTINGS_MODULE": "taskmanager.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


def reset_and_define(world_rng: random.Random) -> dict:
    """Empty every table the benchmark fills; create defs through the service; return them."""
    from django.db import connection

    from usertasks import services
    from usertasks.actors import SYSTEM

    with connection.cursor() as cur:
        cur.execute(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public' AND "
            "(tablename LIKE 'usertasks\\_%%' OR tablename IN ('auth_user', 'auth_group', 'django_session', "
            "'django_admin_log') OR tablename LIKE 'django\\_tasks%%')"
        )
        tables = cur.fetchone()[0]
        cur.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    defs = {}
    for name, _share, versions, _fields in TASK_TYPES:
        for version in range(versions):
            fields = [{"name": n, "type": t, "required": r, "display_name": n[0].upper() + n[1:]}
                      for n, t, r in def_fields(name, version)]  # fmt: skip
            udef, _ = services.put_user_task_def(
                name=name, fields=fields, description=f"{name} (benchmark data)", actor=SYSTEM
            )
            assert udef.version == version, (name, udef.version, version)
            defs[(name, version)] = (udef.pk, def_fields(name, version))
    return defs


def load_people(conn, world: World) -> None:
    """auth_group, auth_user (2000 users + bench-admin), auth_user_groups via COPY."""
    from django.contrib.auth.hashers import make_password

    password = make_password("bench")
    now = _ts(time.time())
    with conn.cursor() as cur:
        with cur.copy("COPY auth_group (id, name) FROM STDIN") as copy:
            for i, g in enumerate(GROUPS, 1):
                copy.write_row((i, g))
        cols = "id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined"
        with cur.copy(f"COPY auth_user ({cols}) FROM STDIN") as copy:
            copy.write_row((1, password, True, "bench-admin", "", "", "", True, True, now))
            for i, user in enumerate(world.users, 2):
                copy.write_row((i, password, False, user, "", "", f"{user}@example.invalid", False, True, now))
        group_ids = {g: i for i, g in enumerate(GROUPS, 1)}
        with cur.copy("COPY auth_user_groups (user_id, group_id) FROM STDIN") as copy:
            for i, user in enumerate(world.users, 2):
                for g in world.user_groups[user]:
                    copy.write_row((i, group_ids[g]))
        for table in ("auth_group", "auth_user", "auth_user_groups"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")


def generate_chunk(world: World, start_id: int, count: int, t0: float, t1: float, event_id: int, now: float):
    """Text for COPY of `count` runs with ids from start_id (scheduled times in [t0, t1))."""
    rng = world.rng
    runs, events, wfruns = [], [], []
    times = sorted(rng.uniform(t0, t1) for _ in range(count))
    prev_wf = None
    for offset, t in enumerate(times):
        run_id = start_id + offset
        age_days = (now - t) / DAY
        name, version = world.draw_type(1 - age_days / 365)
        def_id, fields = world.defs[(name, version)]
        # One WfRun per run, except that a tenth of runs share the WfRun of the run before.
        if prev_wf is not None and rng.random() < 0.1:
            wf_id = prev_wf
        else:
            wf_id = "%032x" % rng.getrandbits(128)
            wfruns.append(f"{wf_id}\t\t{_ts(t)}")
        prev_wf = wf_id
        guid = "%032x" % rng.getrandbits(128)
        group = world.draw_group()
        while group == RETIRED_GROUP and age_days < 365 - 61:
            group = world.draw_group()
        direct = rng.random() < 0.2
        start_group = None if direct and rng.random() < 0.2 else group
        worker = world.draw_member(group)
        p_open = 0.6 * math.exp(-age_days / 30) + 0.02
        if rng.random() < p_open:
            status = "UNASSIGNED" if (not direct and rng.random() < 0.55) else "ASSIGNED"
        else:
            status = "DONE" if rng.random() < 0.92 else "CANCELLED"
        if status == "CANCELLED" and not direct and rng.random() < 0.5:
            final_user = None  # cancelled before anyone claimed it
        elif status == "UNASSIGNED":
            final_user = None
        else:
            final_user = worker
        # Events, in time order: start (ASSIGNED), claim, saves, a comment, the end.
        evs = []
        clock = t
        horizon = max(t, now - 1)

        def later(mean_s: float) -> float:
            nonlocal clock
            clock = min(horizon, clock + rng.expovariate(1 / mean_s))
            return clock

        evs.append((t, "ASSIGNED", ENGINE, {"old_user_id": None, "old_user_group": None,
                                            "new_user_id": worker if direct else None, "new_user_group": start_group}))
        epoch = 1
        if final_user is not None and not direct:
            evs.append((later(4 * 3600), "ASSIGNED", worker, {"old_user_id": None, "old_user_group": group,
                                                              "new_user_id": worker, "new_user_group": group}))
            epoch = 2
        results = {}
        if final_user is not None and rng.random() < 0.25:
            results = world.results(fields, complete=False)
            evs.append((later(6 * 3600), "SAVED", worker, {"user_id": worker, "results": results}))
        if rng.random() < 0.12:
            author = final_user or world.draw_member(group)
            evs.append((later(3 * 3600), "COMMENT_ADDED", author,
                        {"user_comment_id": 1, "user_id": author, "comment": " ".join(rng.choices(WORDS, k=6))}))
        output = failure = None
        if status == "DONE":
            output = results = world.results(fields, complete=True)
            evs.append((later(20 * 3600), "COMPLETED", worker, {"user_id": worker}))
        elif status == "CANCELLED":
            message = "UserTaskRun was cancelled"
            failure = {"type": "ERROR", "name": "USER_TASK_CANCELLED", "message": message}
            evs.append((later(48 * 3600), "CANCELLED", ENGINE, {"message": message}))
        run_user = final_user if status != "UNASSIGNED" else None
        run_group = start_group if start_group is not None else None
        if status == "UNASSIGNED":
            run_group = group
        if run_user is None and run_group is None:
            run_group = group
        notes = "" if rng.random() < 0.6 else "Benchmark run: " + " ".join(rng.choices(WORDS, k=5))
        runs.append("\t".join((
            str(run_id), guid, name, status, run_user or "\\N", run_group or "\\N", _json(results), notes, _ts(t),
            str(epoch), "\\N", "[]", _json(output) if output is not None else "\\N",
            _json(failure) if failure is not None else "\\N", _ts(clock), str(def_id), wf_id,
        )))  # fmt: skip
        for when, kind, actor, payload in evs:
            events.append(f"{event_id}\t{_ts(when)}\t{kind}\t{actor}\t{_json(payload)}\t{run_id}")
            event_id += 1
    return "\n".join(runs) + "\n", "\n".join(events) + "\n", "\n".join(wfruns) + "\n", event_id


def _index_definitions(cur, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(CREATE INDEX statements of plain indexes, (name, definition) of unique constraints)."""
    cur.execute(
        "SELECT pg_get_indexdef(i.indexrelid), c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)",
        [table],
    )
    plain = cur.fetchall()
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    )
    return plain, cur.fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("size", help="10k, 100k or 1m")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=50_000, help="runs per COPY transaction")
    parser.add_argument("--if-missing", action="store_true", help="keep the data when the database has it already")
    args = parser.parse_args()
    label = size_label(args.size)
    n = SIZES[label]
    os.nice(5)  # share the machine politely
    started = time.perf_counter()
    create_database(label)
    setup_django(label)
    from django.db import connection

    from usertasks.models import UserTaskRun

    if args.if_missing and UserTaskRun.objects.filter(user_id__startswith="user-").count() >= n * 0.7:
        print(f"{label}: {db_name(label)} already holds the generated runs; keeping them")
        return
    rng = random.Random(args.seed)
    defs = reset_and_define(rng)
    world = World(rng, defs)
    conn = connection.connection  # the psycopg connection under Django's
    connection.set_autocommit(True)
    load_people(conn, world)

    now = time.time()
    t0 = now - 365 * DAY
    dropped: list[tuple[str, str, str]] = []  # (table, kind, statement to restore)
    with conn.cursor() as cur:
        for table in LOADED_TABLES:
            plain, uniques = _index_definitions(cur, table)
            for definition, name in plain:
                cur.execute(f'DROP INDEX "{name}"')
                dropped.append((table, "index", definition))
            for name, definition in uniques:
                cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                dropped.append((table, "constraint", f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    print(f"{label}: dropped {len(dropped)} indexes/constraints for the load")
    try:
        event_id, done = 1, 0
        while done < n:
            count = min(args.chunk, n - done)
            # Chunks cover consecutive slices of the year, so ids keep growing with time.
            c0 = t0 + (now - 60 - t0) * done / n
            c1 = t0 + (now - 60 - t0) * (done + count) / n
            runs, events, wfruns, event_id = generate_chunk(world, done + 1, count, c0, c1, event_id, now)
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET LOCAL session_replication_role = replica")  # no FK triggers
                for table, cols, data in (("usertasks_wfrun", WFRUN_COLUMNS, wfruns),
                                          ("usertasks_usertaskrun", RUN_COLUMNS, runs),
                                          ("usertasks_usertaskevent", EVENT_COLUMNS, events)):  # fmt: skip
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        copy.write(data)
            done += count
            print(f"  {done:>9,} runs, {event_id - 1:>10,} events  ({time.perf_counter() - started:.0f} s)", flush=True)
    finally:
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '256MB'")
            for table, _kind, statement in dropped:
                cur.execute(statement)
        print(f"  rebuilt {len(dropped)} indexes/constraints ({time.perf_counter() - started:.0f} s)", flush=True)
    with conn.cursor() as cur:
        for table, column in (("usertasks_usertaskrun", "id"), ("usertasks_usertaskevent", "id")):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max(id) FROM {table}))")
        for table in (*LOADED_TABLES, "auth_user", "auth_user_groups", "auth_group"):
            cur.execute(f"VACUUM (ANALYZE) {table}")
        cur.execute("SELECT status, count(*) FROM usertasks_usertaskrun GROUP BY 1 ORDER BY 1")
        spread = ", ".join(f"{s} {c:,}" for s, c in cur.fetchall())
        cur.execute("SELECT pg_size_pretty(pg_total_relation_size('usertasks_usertaskrun')), "
                    "pg_size_pretty(pg_total_relation_size('usertasks_usertaskevent'))")  # fmt: skip
        run_size, event_size = cur.fetchone()
    seconds = time.perf_counter() - started
    print(f"{label}: {n:,} runs ({spread}), {event_id - 1:,} events; runs {run_size}, events {event_size} "
          f"on disk with indexes; {seconds:.0f} s in all")  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"data-{label}.json").write_text(json.dumps({
        "size": label, "runs": n, "events": event_id - 1, "statuses": spread, "runs_on_disk": run_size,
        "events_on_disk": event_size, "seconds": round(seconds), "generated_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
