"""The commands' work beside rendering: extract, evaluation, doctor, the bridge fitting jobs, benchmarks."""
