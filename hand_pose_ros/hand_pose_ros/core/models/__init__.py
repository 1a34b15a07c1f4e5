"""
The networks: which model files exist, how they are verified and read, and the runtimes.

Holds the model catalogue (files, hashes, input sizes), the one TFLite reader, the derived
int8 models and `runtimes/`, the interchangeable engines that run any of these graphs. It
imports only the shared vocabulary: every later stage may use a runtime, none is used here.
"""
