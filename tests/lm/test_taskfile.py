"""Task sets as files: round trips, answer checks that agree with the originals, the task store."""

import json
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdtheory.lm import taskfile as tf
from sdtheory.lm import tasks

rg = pytest.importorskip("reasoning_gym")

RG_TASKS = ("chain_sum", "basic_arithmetic", "gsm_symbolic")


def _json(x):
    """What a file gives back: tuples become lists, fractions stay fractions."""
    return json.loads(json.dumps(x, default=tf._encode), object_hook=tf._decode)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One task-set file per task (40 problems, seed 3) and the original problems."""
    root = tmp_path_factory.mktemp("tasks")
    out = {}
    names = RG_TASKS + (("champ",) if _has("champ_dataset") else ())
    for name in names:
        task = tasks.make_task(name)
        path = tf.write_task_set(root / f"{name}.jsonl", task, 40, seed=3)
        out[name] = (task, task.problems(40, seed=3), path)
    return root, out


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def test_round_trip_gives_the_generated_problems(written):
    _, sets = written
    for name, (task, orig, path) in sets.items():
        ft = tf.FileTask(path)
        got = ft.problems(40, seed=3)
        assert got == orig, name
        assert [p.meta for p in got] == [_json(p.meta) for p in orig]  # meta compares separately
        assert [p.steps for p in got] == [p.steps for p in orig]
        assert tf.task_spec(ft) == tf.task_spec(task)
        ts = tf.read_task_set(path)
        assert ts.key == tf.task_key(tf.task_spec(task), 40, 3)
        rec = ts.records[0]
        assert rec["prompt"] == task.student_messages(orig[0])
        assert rec["views"]["solution"] == task.privileged_view(orig[0], "solution")
        assert rec["views"]["answer"] == f"The final answer is {orig[0].answer}."
        assert rec["difficulty"] == _json(orig[0].meta.get("difficulty"))
        # another seed gives a permutation of the file, deterministic in the seed
        other = ft.problems(40, seed=4)
        assert sorted(p.question for p in other) == sorted(p.question for p in orig)
        assert other == ft.problems(40, seed=4) and other != orig
        assert ft.problems(5, seed=3) == orig[:5]


def test_fractions_in_meta_come_back_as_fractions(tmp_path):
    orig = tasks.make_task("gsm_symbolic").problems(300, seed=3)
    fractions = [p for p in orig if "Fraction" in repr(p.meta)]
    assert fractions  # gsm_symbolic keeps Fractions in its metadata (seed 3: 6 of 300)
    path = tf.write_task_set(tmp_path / "gsm.jsonl", tasks.make_task("gsm_symbolic"), 300, 3, orig)
    got = {p.question: p for p in tf.FileTask(path).problems(300, 3)}
    assert all(got[p.question].meta == _json(p.meta) for p in fractions)
    assert any(
        isinstance(v, Fraction)
        for p in fractions
        for v in got[p.question].meta["variables"].values()
    )


def _completions(answer: str) -> list[str]:
    """Correct answers, formats of it, wrong answers and near misses (reference inside)."""
    out = [
        f"The answer is {answer}.",
        f"Let me think step by step. So the final answer is {answer}",
        f"\\boxed{{{answer}}}",
        f"#### {answer}",
        f"Answer: {answer} apples",
        f"answer is {answer}0",
        f"The answer is {answer}.5",
        "The answer is unknown.",
        "",
        "I give up",
    ]
    try:
        v = int(answer)
    except ValueError:
        return out
    out += [
        f"The answer is {v + 1}.",
        f"The answer is {-v}.",
        f"The answer is {v}.0",
        f"The answer is {v:,}",
        f"The answer is +{v}",
        f"The answer is 0{v}" if v >= 0 else f"The answer is -0{-v}",
        f"The answer is {v} or {v + 2}",
        f"The answer is 1{v}",
        f"{v} is what I get, not {v - 1}",
    ]
    return out


def test_file_verifiers_and_scores_agree_with_the_originals(written):
    _, sets = written
    n_scored = {}
    for name in RG_TASKS:
        task, orig, path = sets[name]
        ft = tf.FileTask(path)
        ds = rg.create_dataset(name, size=1, seed=0, **task.options)
        partial = 0
        for p in orig:
            entry = {"question": p.question, "answer": p.answer, "metadata": p.meta}
            for c in _completions(p.answer):
                assert ft.verify(c, p) == task.verify(c, p), (name, c)
                want = ds.score_answer(tasks.extract_answer(c), entry)
                assert ft.score(c, p) == pytest.approx(want, abs=0, rel=0), (name, c, p.answer)
                partial += 0.0 < want < 1.0
        n_scored[name] = partial
    # the near misses really exercise reasoning-gym's partial credit (substring ratio, gsm 0.01)
    assert all(v > 40 for v in n_scored.values()), n_scored


def test_champ_verifier_agrees_and_has_no_score(written):
    _, sets = written
    if "champ" not in sets:
        pytest.skip("champ_dataset not installed")
    task, orig, path = sets["champ"]
    ft = tf.FileTask(path)
    for p in orig:
        for c in _completions(p.answer):
            assert ft.verify(c, p) == task.verify(c, p)
    with pytest.raises(ValueError, match="no score"):
        ft.score("The answer is 1.", orig[0])


_NUMBERISH = st.text(alphabet="0123456789-+.,eE xab/", max_size=12)
_REFERENCE = st.one_of(
    st.integers(-(10**7), 10**7).map(str),
    st.decimals(-1000, 1000, places=2, allow_nan=False).map(str),
    st.integers(0, 10**7).map(lambda v: f"{v:,}"),
    _NUMBERISH,
)


@given(answer=st.one_of(st.none(), _NUMBERISH), reference=_REFERENCE)
def test_scores_equal_reasoning_gym_on_arbitrary_strings(answer, reference):
    from reasoning_gym.utils import compute_decimal_reward

    exact = rg.create_dataset("basic_arithmetic", size=1, seed=0)
    gsm = rg.create_dataset("gsm_symbolic", size=1, seed=0)
    entry = {"answer": reference}
    assert tf.rg_decimal(answer, reference) == compute_decimal_reward(answer, reference)
    assert tf.rg_decimal(answer, reference, strip_commas=False) == compute_decimal_reward(
        answer, reference, strip_commas=False
    )
    assert tf.rg_exact(answer, reference) == exact.score_answer(answer, entry)
    assert tf.rg_gsm_symbolic(answer, reference) == gsm.score_answer(answer, entry)


@pytest.mark.parametrize(
    "answer, reference, decimal, exact, gsm",
    [  # by hand from the reasoning-gym definitions quoted in the taskfile docstring
        ("+01,000.00", "1000", 1.0, 0.0, 0.01),  # gsm: the first number is "01"
        ("1000 apples", "1000", 4 / 11, 4 / 11, 1.0),  # substring ratio |ref| / |answer|
        ("10000", "1000", 0.8, 0.8, 0.01),
        ("999", "1000", 0.0, 0.0, 0.01),
        ("x", "1000", 0.0, 0.0, 0.0),
        ("-5", "-5", 1.0, 1.0, 0.01),  # gsm: no word boundary before "-", so it reads 5
    ],
)
def test_scores_by_hand(answer, reference, decimal, exact, gsm):
    assert tf.rg_decimal(answer, reference) == pytest.approx(decimal)
    assert tf.rg_exact(answer, reference) == pytest.approx(exact)
    assert tf.rg_gsm_symbolic(answer, reference) == pytest.approx(gsm)


def test_store_answers_problems_without_the_generators(written, monkeypatch):
    root, sets = written
    task, orig, _ = sets["chain_sum"]

    def boom(self, size, seed):
        raise AssertionError("the generator ran")

    monkeypatch.setattr(tasks.ReasoningGymTask, "_generate", boom)
    monkeypatch.setattr(tasks.ChampTask, "_generate", boom)
    with tf.use_task_dir(root) as store:
        assert len(store.keys()) == len(sets)
        got = tasks.make_task("chain_sum").problems(40, seed=3)
        assert got == orig and [p.meta for p in got] == [_json(p.meta) for p in orig]
        # split goes through problems(n_train + n_eval)
        tr, ev = tasks.make_task("chain_sum").split(30, 10, seed=3)
        assert tr + ev == orig
        with pytest.raises(ValueError, match=r'"size": 41'):
            tasks.make_task("chain_sum").problems(41, seed=3)
        with pytest.raises(ValueError, match="max_terms"):
            tasks.make_task("chain_sum", max_terms=3).problems(40, seed=3)
    assert tasks._problem_source is None  # restored
    with tf.use_task_dir(root, strict=False), pytest.raises(AssertionError, match="generator"):
        tasks.make_task("chain_sum").problems(41, seed=3)  # a miss falls back to generating


def test_bad_files_and_inputs(tmp_path, written):
    _, sets = written
    task, orig, path = sets["chain_sum"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "other"}\n')
    with pytest.raises(ValueError, match="not a task-set file"):
        tf.read_task_set(bad)
    lines = path.read_text().splitlines()
    (tmp_path / "short.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="holds 39 problems"):
        tf.read_task_set(tmp_path / "short.jsonl")
    rec = json.loads(lines[1])
    rec["verifier"] = {"name": "llm-judge"}
    (tmp_path / "verifier.jsonl").write_text("\n".join([lines[0], json.dumps(rec)] + lines[2:]))
    with pytest.raises(ValueError, match="verifier must name one of"):
        tf.read_task_set(tmp_path / "verifier.jsonl")
    rec = json.loads(lines[1])
    rec["prompt"][0]["content"] += " (edited)"
    (tmp_path / "prompt.jsonl").write_text("\n".join([lines[0], json.dumps(rec)] + lines[2:]))
    with pytest.raises(ValueError, match="prompt or views"):
        tf.FileTask(tmp_path / "prompt.jsonl")
    ft = tf.FileTask(path)
    with pytest.raises(ValueError, match="size"):
        ft.problems(41)
    with pytest.raises(ValueError, match="not in this task file"):
        ft.verify("1", tasks.Problem("elsewhere?", "1"))
    with pytest.raises(ValueError, match="size"):
        tf.write_task_set(tmp_path / "x.jsonl", task, 0)
    with pytest.raises(ValueError, match="root"):
        tf.TaskStore(tmp_path / "missing")

    class Custom(tasks.Task):
        name = "custom"

        def verify(self, completion, problem):
            return 0.5

    with pytest.raises(ValueError, match="own verify"):
        tf.write_task_set(tmp_path / "c.jsonl", Custom(), 1, problems=[tasks.Problem("q", "1")])
    with pytest.raises(ValueError, match="source"):
        tasks.set_problem_source("not callable")


def test_duplicate_sets_are_refused(tmp_path, written):
    _, sets = written
    path = sets["chain_sum"][2]
    (tmp_path / "a.jsonl").write_text(path.read_text())
    (tmp_path / "b.jsonl").write_text(path.read_text())
    with pytest.raises(ValueError, match="same task set"):
        tf.TaskStore(tmp_path)


def test_reading_a_task_file_imports_no_generator_and_no_torch(written):
    _, sets = written
    path = sets["gsm_symbolic"][2]
    code = (
        "import sys; from sdtheory.lm import taskfile as tf\n"
        f"t = tf.FileTask({str(path)!r}); p = t.problems(3, 3)[0]\n"
        "assert t.verify('The answer is ' + p.answer, p) == 1.0\n"
        "bad = [m for m in ('torch', 'reasoning_gym', 'champ_dataset') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
