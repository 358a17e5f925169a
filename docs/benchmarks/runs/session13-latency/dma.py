import os, struct, subprocess, sys
fd = os.open('/dev/cpu_dma_latency', os.O_WRONLY); os.write(fd, struct.pack('i', 0))
subprocess.run(sys.argv[1:]); os.close(fd)
