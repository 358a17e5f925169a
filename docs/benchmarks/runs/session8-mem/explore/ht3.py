import sys
src=open(__import__('os').path.join(__import__('os').path.dirname(__file__) or '.', 'ht.py')).read().split('names=[]')[0]
exec(src.replace("f = sys.argv[1]; minc = int(sys.argv[2]) if len(sys.argv) > 2 else 1000","f=sys.argv[1]; minc=int(sys.argv[2])"))
N=int(sys.argv[3]); stopidx=int(sys.argv[4])  # alloc info whose first + marks "closing starts"
live=collections.Counter(); cur=0
for k,i in order:
    if k=='+' and i==stopidx: break
    live[i]+= 1 if k=='+' else -1; cur += allocs[i][0] if k=='+' else -allocs[i][0]
rows=[(i,allocs[i][0],c,allocs[i][1]) for i,c in live.items() if c>=minc]
rows.sort(key=lambda r:-r[1]*r[2])
nm=set()
for r in rows:
    for fn,fi,ln in stack(r[3]): nm.add(fn)
nm=list(nm); dm=dict(zip(nm,demangle(nm)))
tot=0
for i,s,c,t in rows:
    st=[(re.sub(r'::h[0-9a-f]{16}$','',dm.get(fn,fn)).replace('{{closure}}','{c}'),fi,ln) for fn,fi,ln in stack(t)]
    st=[x for x in st if not skip.search(x[0])][:3]
    tot+=s*c/N
    print(f"#{i} size {s:6d} live {c} per conn {s*c/N:.0f}  " + " <- ".join(f"{'::'.join(fn.split('::')[-2:])[:50]}@{fi.split('/')[-1]}:{ln}" for fn,fi,ln in st))
print("heap at that point", cur, "listed per conn", tot)
