import pytest
import torch
from trl.trainer.dpo_trainer import DataCollatorForPreference

from training.data import PairError, tokenize_pair, validate_pairs
from training.models import load_tokenizer


def test_standard_and_conversational_pairs_are_recognised(toy_pairs):
    assert validate_pairs(toy_pairs) == "standard"
    chat = [
        {
            "prompt": [{"role": "user", "content": "Hi"}],
            "chosen": [{"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "assistant", "content": "Go away."}],
        }
    ]
    assert validate_pairs(chat) == "conversational"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([], "pairs: must not be empty"),
        ([{"prompt": "a", "chosen": " b"}], r"pairs\[0\]\['rejected'\]: missing"),
        (
            [
                {"prompt": "a", "chosen": " b", "rejected": " c"},
                {"prompt": "a", "chosen": 3, "rejected": " c"},
            ],
            r"pairs\[1\]\['chosen'\]: must be a string",
        ),
        (
            [{"prompt": "a", "chosen": " ", "rejected": " c"}],
            r"pairs\[0\]\['chosen'\]: must not be empty",
        ),
        (
            [{"prompt": "a", "chosen": " b", "rejected": " b"}],
            r"pairs\[0\]\['rejected'\]: identical",
        ),
        (
            [{"prompt": [{"role": "user"}], "chosen": [], "rejected": []}],
            r"pairs\[0\]\['prompt'\]\[0\]\['content'\]: must be a string",
        ),
        (
            [
                {"prompt": "a", "chosen": " b", "rejected": " c"},
                {
                    "prompt": [{"role": "user", "content": "a"}],
                    "chosen": [{"role": "assistant", "content": "b"}],
                    "rejected": [{"role": "assistant", "content": "c"}],
                },
            ],
            r"pairs\[1\]: conversational pair in a standard list",
        ),
    ],
)
def test_malformed_pairs_are_rejected_naming_index_and_key(pairs, message):
    with pytest.raises(PairError, match=message):
        validate_pairs(pairs)


def test_trl_collator_pads_right_and_masks_only_completion_tokens():
    collator = DataCollatorForPreference(pad_token_id=0)
    batch = collator(
        [
            {"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]},
            {"prompt_ids": [7, 8], "chosen_ids": [9], "rejected_ids": [10, 11]},
        ]
    )
    # Rows: chosen of pair 0, chosen of pair 1, rejected of pair 0, rejected of pair 1.
    assert batch["input_ids"].tolist() == [
        [1, 2, 3, 4, 5],
        [7, 8, 9, 0, 0],
        [1, 2, 3, 6, 0],
        [7, 8, 10, 11, 0],
    ]
    assert batch["attention_mask"].tolist() == [
        [1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0],
    ]
    assert batch["completion_mask"].tolist() == [
        [0, 0, 0, 1, 1],
        [0, 0, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 1, 1, 0],
    ]


def test_collator_truncation_keeps_the_start_and_its_mask():
    collator = DataCollatorForPreference(pad_token_id=0, max_length=4)
    batch = collator([{"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5, 6], "rejected_ids": [7]}])
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4], [1, 2, 3, 7]]
    assert batch["completion_mask"].tolist() == [[0, 0, 0, 1], [0, 0, 0, 1]]


def test_standard_pair_tokenises_to_prompt_then_completion_with_eos(tiny_base_model):
    tokenizer = load_tokenizer(tiny_base_model)
    pair = {"prompt": "The list type", "chosen": " is useful.", "rejected": " fails."}
    ids = tokenize_pair(tokenizer, pair)
    assert ids["prompt_ids"] == tokenizer("The list type")["input_ids"]
    assert (
        ids["prompt_ids"] + ids["chosen_ids"]
        == tokenizer("The list type is useful.<|endoftext|>")["input_ids"]
    )
    assert ids["chosen_ids"][-1] == tokenizer.eos_token_id
    assert ids["rejected_ids"][-1] == tokenizer.eos_token_id


def test_conversational_pair_completion_is_the_assistant_turn(tiny_base_model):
    tokenizer = load_tokenizer(tiny_base_model)
    pair = {
        "prompt": [{"role": "user", "content": "Name a type."}],
        "chosen": [{"role": "assistant", "content": "list"}],
        "rejected": [{"role": "assistant", "content": "error"}],
    }
    ids = tokenize_pair(tokenizer, pair)
    assert tokenizer.decode(ids["prompt_ids"]).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(ids["chosen_ids"]) == "list<|im_end|>\n"
    assert tokenizer.decode(ids["rejected_ids"]) == "error<|im_end|>\n"


def test_left_padding_puts_pad_before_the_prompt():
    from training.generate import left_pad

    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids.dtype == torch.long
