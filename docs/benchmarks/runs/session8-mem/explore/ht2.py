import sys
src=open(__import__('os').path.join(__import__('os').path.dirname(__file__) or '.', 'ht.py')).read().split('names=[]')[0]
exec(src.replace("f = sys.argv[1]; minc = int(sys.argv[2]) if len(sys.argv) > 2 else 1000","f=sys.argv[1]; minc=int(sys.argv[2])"))
N=int(sys.argv[3])
# live at peak
cur=0; peak=0; peakpos=0
for pos,(k,i) in enumerate(order):
    s=allocs[i][0]; cur += s if k=='+' else -s
    if cur>peak: peak=cur; peakpos=pos
live=collections.Counter()
for k,i in order[:peakpos+1]: live[i]+= 1 if k=='+' else -1
rows=[(i,s,plus[i],minus[i],t) for i,(s,t) in enumerate(allocs) if plus[i]>=minc]
rows.sort(key=lambda r:-r[1])
nm=set()
for r in rows:
    for fn,fi,ln in stack(r[4]): nm.add(fn)
nm=list(nm); dm=dict(zip(nm,demangle(nm)))
tot=0; lv=0
for i,s,pl,mi,t in rows:
    st=[(re.sub(r'::h[0-9a-f]{16}$','',dm.get(fn,fn)).replace('{{closure}}','{c}'),fi,ln) for fn,fi,ln in stack(t)]
    st=[x for x in st if not skip.search(x[0])][:3]
    tot+=s*pl/N; lv+= s*live[i]/N
    print(f"#{i} size {s:6d} +{pl} -{mi} live@peak {live[i]}  " + " <- ".join(f"{'::'.join(fn.split('::')[-2:])[:50]}@{fi.split('/')[-1]}:{ln}" for fn,fi,ln in st))
print("peak",peak,"allocated per conn", tot, "live per conn at peak (listed)", lv, "allocs/conn", sum(r[2] for r in rows)/N)
