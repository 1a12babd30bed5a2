# Runs firmware test functions under MicroPython: `mp_runner.py MODULE [TEST ...]`.
# Prints PASS/FAIL per test and exits 1 on the first failure, with the traceback.
import sys
import gc


def main():
    module = __import__(sys.argv[1])
    names = sys.argv[2:] or [n for n in dir(module) if n.startswith("test_")]
    for name in names:
        gc.collect()
        try:
            getattr(module, name)()
        except Exception as exc:  # report any failure as the test's failure
            print("FAIL", name)
            sys.print_exception(exc)
            sys.exit(1)
        print("PASS", name)


main()
