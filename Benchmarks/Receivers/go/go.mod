module signalcore.bench/receiver

go 1.19
