"""The benchmarks' interleaved timing: no variant may always run right after the same other one, so
that a slot's effect (caches, thread wake-up after another interpreter) is shared by all variants.

(Why it was checked: in int8_speed.py the same float32 layer measured 1.2-1.5x apart at 2 threads
between two interpreter settings that whole networks showed equal. Rotating the rounds did not remove
that gap, so it is not the slot; the 1-thread layer ratios are the steady figures.)
"""
import numpy as np

from benchmarks import common


class FakeInterpreter:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def allocate_tensors(self):
        pass

    def get_input_details(self):
        return [{"index": 0, "dtype": np.float32, "quantization": (0.0, 0)}]

    def set_tensor(self, index, value):
        pass

    def invoke(self):
        self.log.append(self.name)


def test_timed_in_turns_rotates_the_order_of_each_round(monkeypatch):
    from kconvnext.export import tflite

    log = []
    monkeypatch.setattr(tflite, "make_interpreter", lambda content, **_: FakeInterpreter(content, log))
    names = ["a", "b", "c"]
    times = common.timed_in_turns([(name, 1, {}) for name in names], np.zeros((1, 4, 4, 3), np.float32), runs=6)
    assert len(times) == 3
    rounds = [log[3 + 3 * i:6 + 3 * i] for i in range(6)]  # after the three warm-up calls
    assert all(sorted(r) == names for r in rounds)
    assert {r[0] for r in rounds} == set(names)  # each variant leads some rounds
    predecessors = {name: {r[i - 1] for r in rounds for i in range(1, 3) if r[i] == name} for name in names}
    assert all(len(p) == 2 for p in predecessors.values()), predecessors


def test_cpu_flags_read_the_flags_line_the_precision_choice_and_the_benchmarks_share(tmp_path):
    from kconvnext.timing import cpu_flags

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 avx512_bf16\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu avx avx2 avx512_bf16\n")
    assert cpu_flags(info) == {"fpu", "avx", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "missing") == set()
