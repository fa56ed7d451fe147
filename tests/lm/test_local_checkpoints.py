"""Any local Hugging Face checkpoint as student or teacher, each with its own chat template; a
separate teacher with a different tokenizer is refused, naming both tokenizers."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")
pytest.importorskip("reasoning_gym")

from sdtheory.lm import models, train_cli  # noqa: E402
from sdtheory.lm.trainers import TrainConfig, Trainer  # noqa: E402

FAST = dict(
    hidden_size=32,
    num_layers=2,
    n_train=8,
    n_eval=0,
    batch_problems=2,
    k=2,
    max_new_tokens=4,
    steps=1,
    progress=False,
    threads=1,
)

# a template unlike ChatML: the rendered prompts show which tokenizer rendered them
PLAIN_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


def _save(path, *, vocab_size=320, template=None, seed=0):
    tok = models.tiny_tokenizer(vocab_size)
    if template is not None:
        tok.chat_template = template
    model = models.small_model(
        tok, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, seed=seed
    )
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_local_student_and_teacher_keep_their_own_chat_templates(tmp_path):
    student = _save(tmp_path / "student")  # ChatML
    teacher = _save(tmp_path / "teacher", template=PLAIN_TEMPLATE, seed=3)
    out = tmp_path / "run"
    cfg = TrainConfig(
        method="gkd", model=student, teacher_model=teacher, out=str(out), gkd_lambda=1.0, **FAST
    )
    tr = Trainer(cfg)
    tr.train()
    text = (out / "prompts.txt").read_text()
    student_part, teacher_part = text.split("teacher prompt:")
    assert "<|im_start|>user" in student_part and "[user]" not in student_part
    assert "[user]" in teacher_part and "<|im_start|>" not in teacher_part
    assert teacher_part.rstrip().endswith("[assistant]")


def test_teacher_with_another_tokenizer_is_refused_naming_both(tmp_path, capsys):
    student = _save(tmp_path / "student")
    teacher = _save(tmp_path / "teacher", vocab_size=300)
    argv = ["gkd", "--model", student, "--teacher-model", teacher, "--out", str(tmp_path / "r")]
    assert train_cli.main([*argv, *[f"--{k.replace('_', '-')}={v}" for k, v in FAST.items()]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sdtheory train: error: teacher_model:") and err.count("\n") == 1
    assert f"{teacher!r}" in err and f"{student!r}" in err
    assert "300 tokens" in err and "320 tokens" in err


def test_student_without_chat_template_is_refused(tmp_path):
    path = _save(tmp_path / "bare", template="")
    with pytest.raises(ValueError, match="no chat template"):
        Trainer(TrainConfig(method="opsd", model=path, out=str(tmp_path / "r"), **FAST))
