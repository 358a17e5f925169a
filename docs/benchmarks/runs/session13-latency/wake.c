// Cross-core wake-up latency: a thread on cpu 1 stamps CLOCK_MONOTONIC
// into an eventfd-guarded slot every PERIOD us; a thread on cpu 0 blocks
// in read() and records wake time - stamp. Prints percentiles in us.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
static int efd; static volatile uint64_t stamp; static int n, period_us; static uint64_t *lat;
static uint64_t now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000ull+t.tv_nsec;}
static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);pthread_setaffinity_np(pthread_self(),sizeof s,&s);}
static int got; static void *rx(void*a){pin(0);uint64_t v,seen=0;while(seen<(uint64_t)n){if(read(efd,&v,8)!=8)exit(1);lat[got++]=now()-stamp;seen+=v;}return 0;}
static int cmp(const void*a,const void*b){uint64_t x=*(uint64_t*)a,y=*(uint64_t*)b;return x<y?-1:x>y;}
int main(int c,char**v){n=c>1?atoi(v[1]):20000;period_us=c>2?atoi(v[2]):200;lat=calloc(n,8);efd=eventfd(0,0);
 pthread_t t;pthread_create(&t,0,rx,0);pin(1);struct timespec d;clock_gettime(CLOCK_MONOTONIC,&d);
 for(int i=0;i<n;i++){d.tv_nsec+=period_us*1000;while(d.tv_nsec>=1000000000){d.tv_nsec-=1000000000;d.tv_sec++;}
  clock_nanosleep(CLOCK_MONOTONIC,TIMER_ABSTIME,&d,0);stamp=now();uint64_t one=1;write(efd,&one,8);}
 pthread_join(t,0);n=got;qsort(lat,n,8,cmp);
 printf("n=%d period=%dus p50=%.1f p90=%.1f p99=%.1f p99.9=%.1f max=%.1f us\n",n,period_us,lat[n/2]/1e3,lat[n*9/10]/1e3,lat[n*99/100]/1e3,lat[n*999/1000]/1e3,lat[n-1]/1e3);}
