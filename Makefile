# The README's two commands: `make demo` and `make test`. Both install what they need first.
.PHONY: setup demo test bench-scale

setup:
	bash scripts/setup.sh

demo: setup
	jointspace demo

test: setup
	bash scripts/test.sh

bench-scale: setup
	python bench/scale.py --n 1000000
