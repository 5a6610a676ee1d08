"""repro.launch"""
