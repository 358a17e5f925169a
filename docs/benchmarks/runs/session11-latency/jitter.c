// Timer-jitter probe: spin reading CLOCK_MONOTONIC for N seconds, report the
// gaps between consecutive reads above thresholds, the largest gaps with their
// time offset, so a periodic stall of the VM or kernel shows up with its period.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <stdint.h>
static uint64_t now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return (uint64_t)t.tv_sec*1000000000ull+t.tv_nsec;}
int main(int argc,char**argv){
  double secs=argc>1?atof(argv[1]):30; uint64_t thr=argc>2?atoll(argv[2]):1000000; // report gaps >= thr ns
  uint64_t t0=now(),prev=t0,end=t0+(uint64_t)(secs*1e9); uint64_t maxg=0; long n100us=0,n1ms=0,n5ms=0;
  while(1){uint64_t t=now(); uint64_t g=t-prev; if(g>maxg)maxg=g;
    if(g>=100000)n100us++; if(g>=1000000)n1ms++; if(g>=5000000)n5ms++;
    if(g>=thr) printf("gap %.3f ms at t=%.3f s (monotonic %.3f)\n",g/1e6,(prev-t0)/1e9,prev/1e9);
    prev=t; if(t>=end)break;}
  printf("max gap %.3f ms; gaps >=0.1ms %ld, >=1ms %ld, >=5ms %ld over %.0f s\n",maxg/1e6,n100us,n1ms,n5ms,secs);
  return 0;}
