"""Tasks: answer extraction, verifiers against reasoning-gym's own scorer, privileged views."""

import pytest

pytest.importorskip("reasoning_gym")

from sdtheory.lm import tasks  # noqa: E402


@pytest.mark.parametrize(
    "text, expected",
    [
        ("12 + 30 = 42. The answer is 42.", "42"),
        ("the answer is: -7", "-7"),
        ("Answer: 1,234", "1,234"),
        ("so \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("work\n#### 288", "288"),
        ("I think 3, no wait, 5", "5"),
        ("The answer is 4. Then answer is 9.", "9"),
    ],
)
def test_extract_answer(text, expected):
    assert tasks.extract_answer(text) == expected


@pytest.mark.parametrize(
    "got, ref, equal",
    [
        ("1,234", "1234", True),
        ("42.0", "42", True),
        ("6/4", "1.5", True),
        ("x = 3", "3", True),
        ("-4", "4", False),
        ("$17$", "17", True),
        ("n+1", "N + 1", True),
        ("41", "42", False),
    ],
)
def test_normalize_answer(got, ref, equal):
    assert (tasks.normalize_answer(got) == tasks.normalize_answer(ref)) is equal


def test_chain_sum_verifier_agrees_with_reasoning_gym_scorer():
    import reasoning_gym

    task = tasks.make_task("chain_sum")
    probs = task.problems(40, seed=3)
    ds = reasoning_gym.create_dataset(
        "chain_sum", size=200, seed=3, min_terms=2, max_terms=2, min_digits=1, max_digits=2
    )
    entries = {e["question"]: e for e in ds}
    for p in probs:
        good = f"Let me add. The answer is {p.answer}."
        bad = f"The answer is {int(p.answer) + 1}."
        entry = entries[p.question]
        assert task.verify(good, p) == 1.0 == ds.score_answer(p.answer, entry)
        assert task.verify(bad, p) == 0.0 == ds.score_answer(tasks.extract_answer(bad), entry)
        # the derived worked solution ends in the reference answer
        assert task.verify(p.solution, p) == 1.0


def test_split_is_disjoint_and_deterministic():
    task = tasks.make_task("chain_sum")
    tr, ev = task.split(50, 10, seed=1)
    assert len(tr) == 50 and len(ev) == 10
    assert not {p.question for p in tr} & {p.question for p in ev}
    assert [p.question for p in task.split(50, 10, seed=1)[0]] == [p.question for p in tr]
    assert [p.question for p in task.split(50, 10, seed=2)[0]] != [p.question for p in tr]


def test_privileged_views_and_partial_fraction():
    p = tasks.Problem("Q?", "7", ("s1", "s2", "s3", "s4", "The answer is 7."))
    task = tasks.Task()
    assert task.privileged_view(p, "answer") == "The final answer is 7."
    assert task.privileged_view(p, "solution") == "s1\ns2\ns3\ns4\nThe answer is 7."
    # rho = 0.5 of m = 5 steps reveals floor(2.5) = 2 steps
    assert task.privileged_view(p, "partial", 0.5) == "s1\ns2\n..."
    assert task.privileged_view(p, "partial", 1.0) == task.privileged_view(p, "solution")
    assert "s1" not in task.privileged_view(p, "partial", 0.1)
    with pytest.raises(ValueError, match="view"):
        task.privileged_view(p, "hint")
    with pytest.raises(ValueError, match="rho"):
        task.privileged_view(p, "partial", 1.5)


def test_student_messages_never_contain_privileged_information():
    pytest.importorskip("torch")
    from sdtheory.lm.teachers import TEACHER_INTRO, view_messages

    for name in ("chain_sum", "gsm_symbolic"):
        task = tasks.make_task(name)
        for p in task.problems(5, seed=0):
            student = task.student_messages(p)[0]["content"]
            teacher = view_messages(task, p, "solution")[0]["content"]
            assert p.solution and p.solution not in student and TEACHER_INTRO not in student
            assert p.solution in teacher and student in teacher


def test_gsm_symbolic_has_worked_solution_with_answer():
    task = tasks.make_task("gsm_symbolic")
    for p in task.problems(5, seed=0):
        assert len(p.steps) >= 2 and task.verify(p.solution, p) == 1.0


def test_champ_adapter():
    pytest.importorskip("champ_dataset")
    task = tasks.make_task("champ")
    probs = task.problems(270, seed=0)
    assert len(probs) == 270 and all(p.steps for p in probs)
    p = next(q for q in probs if q.meta["id"] == "P_Combinatorics_1")
    assert p.answer == "239"  # champ v0, P_Combinatorics_1 (environment.md, sec. 2)
    assert task.verify("... in total there are 239 such strings. The answer is 239.", p) == 1.0


def test_chat_prompt_ids_ends_with_generation_prompt():
    pytest.importorskip("transformers")
    from sdtheory.lm.models import tiny_tokenizer

    tok = tiny_tokenizer()
    ids = tasks.chat_prompt_ids(tok, [{"role": "user", "content": "1 + 2 ="}])
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")
    assert isinstance(ids, list) and all(isinstance(i, int) for i in ids)


def test_make_task_rejects_unknown():
    with pytest.raises(ValueError, match="name"):
        tasks.make_task("gsm8k")
