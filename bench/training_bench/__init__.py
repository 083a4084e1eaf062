"""The training benchmark (`bench/training.py`) cut per benchmark: `common` (pairs, tables,
memory), `dpo` (the reward-model and DPO variants), `stages` (SFT, KTO, online RL against TRL),
`generation`, and `runs` (one run in a fresh process, round robin, ablation)."""
