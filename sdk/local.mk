# rules for sdk
