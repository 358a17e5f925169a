// stealmon SECS [PERIOD_MS]: every PERIOD_MS (default 100) prints the
// CLOCK_MONOTONIC time and, per cpu, the steal and busy ticks (USER_HZ) of
// /proc/stat since the last line; only lines where something was stolen.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static int readstat(long long steal[8], long long busy[8]){
  FILE*f=fopen("/proc/stat","r"); char line[512]; int n=0;
  while(fgets(line,sizeof line,f)){ if(strncmp(line,"cpu",3)||line[3]==' ') continue;
    long long v[10]={0}; int c; sscanf(line,"cpu%d %lld %lld %lld %lld %lld %lld %lld %lld",&c,&v[0],&v[1],&v[2],&v[3],&v[4],&v[5],&v[6],&v[7]);
    if(c<8){steal[c]=v[7]; busy[c]=v[0]+v[1]+v[2]+v[5]+v[6]; if(c+1>n)n=c+1;} }
  fclose(f); return n;}
int main(int argc,char**argv){
  double secs=argc>1?atof(argv[1]):30; int per=argc>2?atoi(argv[2]):100;
  long long s0[8],b0[8],s1[8],b1[8]; int n=readstat(s0,b0);
  struct timespec t,start; clock_gettime(CLOCK_MONOTONIC,&start); t=start;
  long long total[8]={0};
  for(;;){ t.tv_nsec+=per*1000000L; while(t.tv_nsec>=1000000000L){t.tv_nsec-=1000000000L;t.tv_sec++;}
    clock_nanosleep(CLOCK_MONOTONIC,TIMER_ABSTIME,&t,NULL); readstat(s1,b1); int any=0;
    for(int c=0;c<n;c++){ if(s1[c]!=s0[c]) any=1; total[c]+=s1[c]-s0[c]; }
    if(any){ printf("%.3f",t.tv_sec+t.tv_nsec/1e9); for(int c=0;c<n;c++) printf(" cpu%d steal %lld busy %lld",c,s1[c]-s0[c],b1[c]-b0[c]); printf("\n"); fflush(stdout);}
    memcpy(s0,s1,sizeof s0); memcpy(b0,b1,sizeof b0);
    if((t.tv_sec-start.tv_sec)+(t.tv_nsec-start.tv_nsec)/1e9>=secs) break; }
  printf("# total steal ticks:"); for(int c=0;c<n;c++) printf(" cpu%d %lld",c,total[c]); printf(" over %.0f s\n",secs);
  return 0;}
