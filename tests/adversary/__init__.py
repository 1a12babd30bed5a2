"""Attacks on the system from outside its trust boundaries: a thief with a copy of a
file, a man in the middle, a second terminal."""
