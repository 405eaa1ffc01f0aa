var N=globalThis,L=N.ShadowRoot&&(N.ShadyCSS===void 0||N.ShadyCSS.nativeShadow)&&"adoptedStyleSheets"in Document.prototype&&"replace"in CSSStyleSheet.prototype,V=Symbol(),ht=new WeakMap,k=class{constructor(t,e,s){if(this._$cssResult$=!0,s!==V)throw Error("CSSResult is not constructable. Use `unsafeCSS` or `css` instead.");this.cssText=t,this.t=e}get styleSheet(){let t=this.o,e=this.t;if(L&&t===void 0){let s=e!==void 0&&e.length===1;s&&(t=ht.get(e)),t===void 0&&((this.o=t=new CSSStyleSheet).replaceSync(this.cssText),s&&ht.set(e,t))}return t}toString(){return this.cssText}},lt=r=>new k(typeof r=="string"?r:r+"",void 0,V),b=(r,...t)=>{let e=r.length===1?r[0]:t.reduce((s,i,n)=>s+(o=>{if(o._$cssResult$===!0)return o.cssText;if(typeof o=="number")return o;throw Error("Value passed to 'css' function must be a 'css' function result: "+o+". Use 'unsafeCSS' to pass non-literal values, but take care to ensure page security.")})(i)+r[n+1],r[0]);return new k(e,r,V)},ct=(r,t)=>{if(L)r.adoptedStyleSheets=t.map(e=>e instanceof CSSStyleSheet?e:e.styleSheet);else for(let e of t){let s=document.createElement("style"),i=N.litNonce;i!==void 0&&s.setAttribute("nonce",i),s.textContent=e.cssText,r.appendChild(s)}},Z=L?r=>r:r=>r instanceof CSSStyleSheet?(t=>{let e="";for(let s of t.cssRules)e+=s.cssText;return lt(e)})(r):r;var{is:Pt,defineProperty:Ht,getOwnPropertyDescriptor:Rt,getOwnPropertyNames:Ut,getOwnPropertySymbols:zt,getPrototypeOf:Ot}=Object,D=globalThis,dt=D.trustedTypes,Nt=dt?dt.emptyScript:"",Lt=D.reactiveElementPolyfillSupport,T=(r,t)=>r,K={toAttribute(r,t){switch(t){case Boolean:r=r?Nt:null;break;case Object:case Array:r=r==null?r:JSON.stringify(r)}return r},fromAttribute(r,t){let e=r;switch(t){case Boolean:e=r!==null;break;case Number:e=r===null?null:Number(r);break;case Object:case Array:try{e=JSON.parse(r)}catch{e=null}}return e}},mt=(r,t)=>!Pt(r,t),pt={attribute:!0,type:String,converter:K,reflect:!1,useDefault:!1,hasChanged:mt};Symbol.metadata??=Symbol("metadata"),D.litPropertyMetadata??=new WeakMap;var g=class extends HTMLElement{static addInitializer(t){this._$Ei(),(this.l??=[]).push(t)}static get observedAttributes(){return this.finalize(),this._$Eh&&[...this._$Eh.keys()]}static createProperty(t,e=pt){if(e.state&&(e.attribute=!1),this._$Ei(),this.prototype.hasOwnProperty(t)&&((e=Object.create(e)).wrapped=!0),this.elementProperties.set(t,e),!e.noAccessor){let s=Symbol(),i=this.getPropertyDescriptor(t,s,e);i!==void 0&&Ht(this.prototype,t,i)}}static getPropertyDescriptor(t,e,s){let{get:i,set:n}=Rt(this.prototype,t)??{get(){return this[e]},set(o){this[e]=o}};return{get:i,set(o){let l=i?.call(this);n?.call(this,o),this.requestUpdate(t,l,s)},configurable:!0,enumerable:!0}}static getPropertyOptions(t){return this.elementProperties.get(t)??pt}static _$Ei(){if(this.hasOwnProperty(T("elementProperties")))return;let t=Ot(this);t.finalize(),t.l!==void 0&&(this.l=[...t.l]),this.elementProperties=new Map(t.elementProperties)}static finalize(){if(this.hasOwnProperty(T("finalized")))return;if(this.finalized=!0,this._$Ei(),this.hasOwnProperty(T("properties"))){let e=this.properties,s=[...Ut(e),...zt(e)];for(let i of s)this.createProperty(i,e[i])}let t=this[Symbol.metadata];if(t!==null){let e=litPropertyMetadata.get(t);if(e!==void 0)for(let[s,i]of e)this.elementProperties.set(s,i)}this._$Eh=new Map;for(let[e,s]of this.elementProperties){let i=this._$Eu(e,s);i!==void 0&&this._$Eh.set(i,e)}this.elementStyles=this.finalizeStyles(this.styles)}static finalizeStyles(t){let e=[];if(Array.isArray(t)){let s=new Set(t.flat(1/0).reverse());for(let i of s)e.unshift(Z(i))}else t!==void 0&&e.push(Z(t));return e}static _$Eu(t,e){let s=e.attribute;return s===!1?void 0:typeof s=="string"?s:typeof t=="string"?t.toLowerCase():void 0}constructor(){super(),this._$Ep=void 0,this.isUpdatePending=!1,this.hasUpdated=!1,this._$Em=null,this._$Ev()}_$Ev(){this._$ES=new Promise(t=>this.enableUpdating=t),this._$AL=new Map,this._$E_(),this.requestUpdate(),this.constructor.l?.forEach(t=>t(this))}addController(t){(this._$EO??=new Set).add(t),this.renderRoot!==void 0&&this.isConnected&&t.hostConnected?.()}removeController(t){this._$EO?.delete(t)}_$E_(){let t=new Map,e=this.constructor.elementProperties;for(let s of e.keys())this.hasOwnProperty(s)&&(t.set(s,this[s]),delete this[s]);t.size>0&&(this._$Ep=t)}createRenderRoot(){let t=this.shadowRoot??this.attachShadow(this.constructor.shadowRootOptions);return ct(t,this.constructor.elementStyles),t}connectedCallback(){this.renderRoot??=this.createRenderRoot(),this.enableUpdating(!0),this._$EO?.forEach(t=>t.hostConnected?.())}enableUpdating(t){}disconnectedCallback(){this._$EO?.forEach(t=>t.hostDisconnected?.())}attributeChangedCallback(t,e,s){this._$AK(t,s)}_$ET(t,e){let s=this.constructor.elementProperties.get(t),i=this.constructor._$Eu(t,s);if(i!==void 0&&s.reflect===!0){let n=(s.converter?.toAttribute!==void 0?s.converter:K).toAttribute(e,s.type);this._$Em=t,n==null?this.removeAttribute(i):this.setAttribute(i,n),this._$Em=null}}_$AK(t,e){let s=this.constructor,i=s._$Eh.get(t);if(i!==void 0&&this._$Em!==i){let n=s.getPropertyOptions(i),o=typeof n.converter=="function"?{fromAttribute:n.converter}:n.converter?.fromAttribute!==void 0?n.converter:K;this._$Em=i;let l=o.fromAttribute(e,n.type);this[i]=l??this._$Ej?.get(i)??l,this._$Em=null}}requestUpdate(t,e,s,i=!1,n){if(t!==void 0){let o=this.constructor;if(i===!1&&(n=this[t]),s??=o.getPropertyOptions(t),!((s.hasChanged??mt)(n,e)||s.useDefault&&s.reflect&&n===this._$Ej?.get(t)&&!this.hasAttribute(o._$Eu(t,s))))return;this.C(t,e,s)}this.isUpdatePending===!1&&(this._$ES=this._$EP())}C(t,e,{useDefault:s,reflect:i,wrapped:n},o){s&&!(this._$Ej??=new Map).has(t)&&(this._$Ej.set(t,o??e??this[t]),n!==!0||o!==void 0)||(this._$AL.has(t)||(this.hasUpdated||s||(e=void 0),this._$AL.set(t,e)),i===!0&&this._$Em!==t&&(this._$Eq??=new Set).add(t))}async _$EP(){this.isUpdatePending=!0;try{await this._$ES}catch(e){Promise.reject(e)}let t=this.scheduleUpdate();return t!=null&&await t,!this.isUpdatePending}scheduleUpdate(){return this.performUpdate()}performUpdate(){if(!this.isUpdatePending)return;if(!this.hasUpdated){if(this.renderRoot??=this.createRenderRoot(),this._$Ep){for(let[i,n]of this._$Ep)this[i]=n;this._$Ep=void 0}let s=this.constructor.elementProperties;if(s.size>0)for(let[i,n]of s){let{wrapped:o}=n,l=this[i];o!==!0||this._$AL.has(i)||l===void 0||this.C(i,void 0,n,l)}}let t=!1,e=this._$AL;try{t=this.shouldUpdate(e),t?(this.willUpdate(e),this._$EO?.forEach(s=>s.hostUpdate?.()),this.update(e)):this._$EM()}catch(s){throw t=!1,this._$EM(),s}t&&this._$AE(e)}willUpdate(t){}_$AE(t){this._$EO?.forEach(e=>e.hostUpdated?.()),this.hasUpdated||(this.hasUpdated=!0,this.firstUpdated(t)),this.updated(t)}_$EM(){this._$AL=new Map,this.isUpdatePending=!1}get updateComplete(){return this.getUpdateComplete()}getUpdateComplete(){return this._$ES}shouldUpdate(t){return!0}update(t){this._$Eq&&=this._$Eq.forEach(e=>this._$ET(e,this[e])),this._$EM()}updated(t){}firstUpdated(t){}};g.elementStyles=[],g.shadowRootOptions={mode:"open"},g[T("elementProperties")]=new Map,g[T("finalized")]=new Map,Lt?.({ReactiveElement:g}),(D.reactiveElementVersions??=[]).push("2.1.2");var Y=globalThis,ut=r=>r,I=Y.trustedTypes,ft=I?I.createPolicy("lit-html",{createHTML:r=>r}):void 0,_t="$lit$",y=`lit$${Math.random().toFixed(9).slice(2)}$`,wt="?"+y,Dt=`<${wt}>`,x=document,P=()=>x.createComment(""),H=r=>r===null||typeof r!="object"&&typeof r!="function",tt=Array.isArray,It=r=>tt(r)||typeof r?.[Symbol.iterator]=="function",q=`[ 	
\f\r]`,M=/<(?:(!--|\/[^a-zA-Z])|(\/?[a-zA-Z][^>\s]*)|(\/?$))/g,gt=/-->/g,vt=/>/g,_=RegExp(`>|${q}(?:([^\\s"'>=/]+)(${q}*=${q}*(?:[^ 	
\f\r"'\`<>=]|("|')|))|$)`,"g"),$t=/'/g,yt=/"/g,xt=/^(?:script|style|textarea|title)$/i,et=r=>(t,...e)=>({_$litType$:r,strings:t,values:e}),d=et(1),j=et(2),ee=et(3),A=Symbol.for("lit-noChange"),h=Symbol.for("lit-nothing"),bt=new WeakMap,w=x.createTreeWalker(x,129);function At(r,t){if(!tt(r)||!r.hasOwnProperty("raw"))throw Error("invalid template strings array");return ft!==void 0?ft.createHTML(t):t}var jt=(r,t)=>{let e=r.length-1,s=[],i,n=t===2?"<svg>":t===3?"<math>":"",o=M;for(let l=0;l<e;l++){let a=r[l],p,m,c=-1,f=0;for(;f<a.length&&(o.lastIndex=f,m=o.exec(a),m!==null);)f=o.lastIndex,o===M?m[1]==="!--"?o=gt:m[1]!==void 0?o=vt:m[2]!==void 0?(xt.test(m[2])&&(i=RegExp("</"+m[2],"g")),o=_):m[3]!==void 0&&(o=_):o===_?m[0]===">"?(o=i??M,c=-1):m[1]===void 0?c=-2:(c=o.lastIndex-m[2].length,p=m[1],o=m[3]===void 0?_:m[3]==='"'?yt:$t):o===yt||o===$t?o=_:o===gt||o===vt?o=M:(o=_,i=void 0);let $=o===_&&r[l+1].startsWith("/>")?" ":"";n+=o===M?a+Dt:c>=0?(s.push(p),a.slice(0,c)+_t+a.slice(c)+y+$):a+y+(c===-2?l:$)}return[At(r,n+(r[e]||"<?>")+(t===2?"</svg>":t===3?"</math>":"")),s]},R=class r{constructor({strings:t,_$litType$:e},s){let i;this.parts=[];let n=0,o=0,l=t.length-1,a=this.parts,[p,m]=jt(t,e);if(this.el=r.createElement(p,s),w.currentNode=this.el.content,e===2||e===3){let c=this.el.content.firstChild;c.replaceWith(...c.childNodes)}for(;(i=w.nextNode())!==null&&a.length<l;){if(i.nodeType===1){if(i.hasAttributes())for(let c of i.getAttributeNames())if(c.endsWith(_t)){let f=m[o++],$=i.getAttribute(c).split(y),O=/([.?@])?(.*)/.exec(f);a.push({type:1,index:n,name:O[2],strings:$,ctor:O[1]==="."?X:O[1]==="?"?J:O[1]==="@"?G:S}),i.removeAttribute(c)}else c.startsWith(y)&&(a.push({type:6,index:n}),i.removeAttribute(c));if(xt.test(i.tagName)){let c=i.textContent.split(y),f=c.length-1;if(f>0){i.textContent=I?I.emptyScript:"";for(let $=0;$<f;$++)i.append(c[$],P()),w.nextNode(),a.push({type:2,index:++n});i.append(c[f],P())}}}else if(i.nodeType===8)if(i.data===wt)a.push({type:2,index:n});else{let c=-1;for(;(c=i.data.indexOf(y,c+1))!==-1;)a.push({type:7,index:n}),c+=y.length-1}n++}}static createElement(t,e){let s=x.createElement("template");return s.innerHTML=t,s}};function E(r,t,e=r,s){if(t===A)return t;let i=s!==void 0?e._$Co?.[s]:e._$Cl,n=H(t)?void 0:t._$litDirective$;return i?.constructor!==n&&(i?._$AO?.(!1),n===void 0?i=void 0:(i=new n(r),i._$AT(r,e,s)),s!==void 0?(e._$Co??=[])[s]=i:e._$Cl=i),i!==void 0&&(t=E(r,i._$AS(r,t.values),i,s)),t}var F=class{constructor(t,e){this._$AV=[],this._$AN=void 0,this._$AD=t,this._$AM=e}get parentNode(){return this._$AM.parentNode}get _$AU(){return this._$AM._$AU}u(t){let{el:{content:e},parts:s}=this._$AD,i=(t?.creationScope??x).importNode(e,!0);w.currentNode=i;let n=w.nextNode(),o=0,l=0,a=s[0];for(;a!==void 0;){if(o===a.index){let p;a.type===2?p=new U(n,n.nextSibling,this,t):a.type===1?p=new a.ctor(n,a.name,a.strings,this,t):a.type===6&&(p=new Q(n,this,t)),this._$AV.push(p),a=s[++l]}o!==a?.index&&(n=w.nextNode(),o++)}return w.currentNode=x,i}p(t){let e=0;for(let s of this._$AV)s!==void 0&&(s.strings!==void 0?(s._$AI(t,s,e),e+=s.strings.length-2):s._$AI(t[e])),e++}},U=class r{get _$AU(){return this._$AM?._$AU??this._$Cv}constructor(t,e,s,i){this.type=2,this._$AH=h,this._$AN=void 0,this._$AA=t,this._$AB=e,this._$AM=s,this.options=i,this._$Cv=i?.isConnected??!0}get parentNode(){let t=this._$AA.parentNode,e=this._$AM;return e!==void 0&&t?.nodeType===11&&(t=e.parentNode),t}get startNode(){return this._$AA}get endNode(){return this._$AB}_$AI(t,e=this){t=E(this,t,e),H(t)?t===h||t==null||t===""?(this._$AH!==h&&this._$AR(),this._$AH=h):t!==this._$AH&&t!==A&&this._(t):t._$litType$!==void 0?this.$(t):t.nodeType!==void 0?this.T(t):It(t)?this.k(t):this._(t)}O(t){return this._$AA.parentNode.insertBefore(t,this._$AB)}T(t){this._$AH!==t&&(this._$AR(),this._$AH=this.O(t))}_(t){this._$AH!==h&&H(this._$AH)?this._$AA.nextSibling.data=t:this.T(x.createTextNode(t)),this._$AH=t}$(t){let{values:e,_$litType$:s}=t,i=typeof s=="number"?this._$AC(t):(s.el===void 0&&(s.el=R.createElement(At(s.h,s.h[0]),this.options)),s);if(this._$AH?._$AD===i)this._$AH.p(e);else{let n=new F(i,this),o=n.u(this.options);n.p(e),this.T(o),this._$AH=n}}_$AC(t){let e=bt.get(t.strings);return e===void 0&&bt.set(t.strings,e=new R(t)),e}k(t){tt(this._$AH)||(this._$AH=[],this._$AR());let e=this._$AH,s,i=0;for(let n of t)i===e.length?e.push(s=new r(this.O(P()),this.O(P()),this,this.options)):s=e[i],s._$AI(n),i++;i<e.length&&(this._$AR(s&&s._$AB.nextSibling,i),e.length=i)}_$AR(t=this._$AA.nextSibling,e){for(this._$AP?.(!1,!0,e);t!==this._$AB;){let s=ut(t).nextSibling;ut(t).remove(),t=s}}setConnected(t){this._$AM===void 0&&(this._$Cv=t,this._$AP?.(t))}},S=class{get tagName(){return this.element.tagName}get _$AU(){return this._$AM._$AU}constructor(t,e,s,i,n){this.type=1,this._$AH=h,this._$AN=void 0,this.element=t,this.name=e,this._$AM=i,this.options=n,s.length>2||s[0]!==""||s[1]!==""?(this._$AH=Array(s.length-1).fill(new String),this.strings=s):this._$AH=h}_$AI(t,e=this,s,i){let n=this.strings,o=!1;if(n===void 0)t=E(this,t,e,0),o=!H(t)||t!==this._$AH&&t!==A,o&&(this._$AH=t);else{let l=t,a,p;for(t=n[0],a=0;a<n.length-1;a++)p=E(this,l[s+a],e,a),p===A&&(p=this._$AH[a]),o||=!H(p)||p!==this._$AH[a],p===h?t=h:t!==h&&(t+=(p??"")+n[a+1]),this._$AH[a]=p}o&&!i&&this.j(t)}j(t){t===h?this.element.removeAttribute(this.name):this.element.setAttribute(this.name,t??"")}},X=class extends S{constructor(){super(...arguments),this.type=3}j(t){this.element[this.name]=t===h?void 0:t}},J=class extends S{constructor(){super(...arguments),this.type=4}j(t){this.element.toggleAttribute(this.name,!!t&&t!==h)}},G=class extends S{constructor(t,e,s,i,n){super(t,e,s,i,n),this.type=5}_$AI(t,e=this){if((t=E(this,t,e,0)??h)===A)return;let s=this._$AH,i=t===h&&s!==h||t.capture!==s.capture||t.once!==s.once||t.passive!==s.passive,n=t!==h&&(s===h||i);i&&this.element.removeEventListener(this.name,this,s),n&&this.element.addEventListener(this.name,this,t),this._$AH=t}handleEvent(t){typeof this._$AH=="function"?this._$AH.call(this.options?.host??this.element,t):this._$AH.handleEvent(t)}},Q=class{constructor(t,e,s){this.element=t,this.type=6,this._$AN=void 0,this._$AM=e,this.options=s}get _$AU(){return this._$AM._$AU}_$AI(t){E(this,t)}};var Bt=Y.litHtmlPolyfillSupport;Bt?.(R,U),(Y.litHtmlVersions??=[]).push("3.3.3");var Et=(r,t,e)=>{let s=e?.renderBefore??t,i=s._$litPart$;if(i===void 0){let n=e?.renderBefore??null;s._$litPart$=i=new U(t.insertBefore(P(),n),n,void 0,e??{})}return i._$AI(r),i};var st=globalThis,u=class extends g{constructor(){super(...arguments),this.renderOptions={host:this},this._$Do=void 0}createRenderRoot(){let t=super.createRenderRoot();return this.renderOptions.renderBefore??=t.firstChild,t}update(t){let e=this.render();this.hasUpdated||(this.renderOptions.isConnected=this.isConnected),super.update(t),this._$Do=Et(e,this.renderRoot,this.renderOptions)}connectedCallback(){super.connectedCallback(),this._$Do?.setConnected(!0)}disconnectedCallback(){super.disconnectedCallback(),this._$Do?.setConnected(!1)}render(){return A}};u._$litElement$=!0,u.finalized=!0,st.litElementHydrateSupport?.({LitElement:u});var Wt=st.litElementPolyfillSupport;Wt?.({LitElement:u});(st.litElementVersions??=[]).push("4.2.2");var St={card:{name:"pm_dvr R\xFCckblick",description:"Live-Bild, eine Zeitleiste mit Aufnahmen, Bewegung und Ereignissen, Wiedergabe ab jedem Moment und Export.",no_camera:"W\xE4hle in den Einstellungen der Karte eine pm_dvr-Kamera.",unknown_camera:"{entity} ist keine pm_dvr-Kamera."},camera:{live:"Live",playing:"Wiedergabe ab {time}",capture:"Jetzt aufnehmen",captured:"Ereignis aufgenommen",persistent_on:"Dauerhaft aufnehmen",persistent_off:"Dauerhafte Aufnahme beenden",export:"Bereich exportieren",export_too_long:"Ein Export umfasst h\xF6chstens 6 Stunden: erst hineinzoomen.",exporting:"Exportiere\u2026",exported:"Export fertig: {name}",download:"Herunterladen",zoom_in:"Vergr\xF6\xDFern",zoom_out:"Verkleinern",earlier:"Fr\xFCher",later:"Sp\xE4ter",now:"Jetzt",events:"Ereignisse",no_events:"Keine Ereignisse in diesem Zeitraum.",recordings:"Aufnahmen",motion:"Bewegung",no_footage:"Ab diesem Moment wurde nichts aufgenommen."},editor:{cameras:"Kameras",title:"Titel",hours:"Anfangs gezeigte Stunden",columns:"Spalten auf breitem Bildschirm"}};var B={card:{name:"pm_dvr review",description:"Live view, a timeline of recordings, motion and events, playback from any moment and export.",no_camera:"Choose a pm_dvr camera in the card's settings.",unknown_camera:"{entity} is not a pm_dvr camera."},camera:{live:"Live",playing:"Playing from {time}",capture:"Capture now",captured:"Event captured",persistent_on:"Record persistently",persistent_off:"Stop persistent recording",export:"Export range",export_too_long:"An export covers at most 6 hours: zoom in first.",exporting:"Exporting\u2026",exported:"Export ready: {name}",download:"Download",zoom_in:"Zoom in",zoom_out:"Zoom out",earlier:"Earlier",later:"Later",now:"Now",events:"Events",no_events:"No events in this range.",recordings:"Recordings",motion:"Motion",no_footage:"Nothing was recorded from that moment on."},editor:{cameras:"Cameras",title:"Title",hours:"Hours shown at first",columns:"Columns on a wide screen"}};var Ct={de:St,en:B};function kt(r,t){let e=r;for(let s of t.split("."))e=typeof e=="object"?e[s]:void 0;return typeof e=="string"?e:void 0}function W(r){return r?.locale?.language??r?.language??"en"}function v(r,t,e={}){let s=W(r),i=Ct[s]??Ct[s.split("-")[0]]??B;return(kt(i,t)??kt(B,t)??t).replace(/\{(\w+)\}/g,(o,l)=>e[l]??o)}var Tt=[300,900,1800,3600,3*3600,6*3600,12*3600,86400,7*86400],Kt=8,C=1e3,it=class extends u{constructor(){super(...arguments);this.start=0;this.end=1;this.recordings=[];this.motion=[];this.events=[];this.cursor=null;this.locale="en";this.scrubbing=!1}static{this.properties={start:{type:Number},end:{type:Number},recordings:{attribute:!1},motion:{attribute:!1},events:{attribute:!1},cursor:{type:Number},timeZone:{attribute:!1},locale:{attribute:!1}}}x(e){return(e-this.start)/(this.end-this.start)*C}bar(e,s,i,n){let o=Math.max(0,this.x(e[0])),l=Math.min(C,this.x(e[1]));return l<0||o>C?h:j`<rect class=${n} x=${o} y=${s} width=${Math.max(l-o,1.5)} height=${i}></rect>`}ticks(){let e=this.end-this.start,s=Tt.find(a=>e/a<=Kt)??Tt.at(-1),i=new Intl.DateTimeFormat(this.locale,{timeZone:this.timeZone,...s>=86400?{month:"short",day:"numeric"}:{hour:"2-digit",minute:"2-digit"}}),n=qt(this.start,this.timeZone),o=Math.ceil((this.start+n)/s)*s-n,l=[];for(let a=o;a<=this.end;a+=s)l.push({time:a,label:i.format(new Date(a*1e3))});return l}timeAt(e){let s=this.renderRoot.querySelector(".strip").getBoundingClientRect(),i=Math.min(1,Math.max(0,(e.clientX-s.left)/s.width));return this.start+i*(this.end-this.start)}seek(e,s){this.dispatchEvent(new CustomEvent("pm-dvr-seek",{detail:{time:this.timeAt(e),final:s},bubbles:!0,composed:!0}))}down(e){this.scrubbing=!0,e.currentTarget.setPointerCapture(e.pointerId),this.seek(e,!1)}move(e){this.scrubbing&&this.seek(e,!1)}up(e){this.scrubbing&&(this.scrubbing=!1,this.seek(e,!0))}render(){let e=this.ticks();return d`
      <div
        class="strip"
        @pointerdown=${this.down}
        @pointermove=${this.move}
        @pointerup=${this.up}
        @pointercancel=${()=>this.scrubbing=!1}
      >
        <svg viewBox="0 0 ${C} 40" preserveAspectRatio="none" aria-hidden="true">
          <rect class="ground" x="0" y="4" width=${C} height="14"></rect>
          ${this.recordings.map(s=>this.bar(s,4,14,"recording"))}
          ${this.motion.map(s=>this.bar(s,21,7,"motion"))}
          ${this.events.map(s=>this.bar([s.start,s.end??s.start+1],31,7,s.keep?"event kept":"event"))}
          ${e.map(s=>j`<line class="tick" x1=${this.x(s.time)} x2=${this.x(s.time)} y1="0" y2="40"></line>`)}
          ${this.cursor===null?h:j`<line class="cursor" x1=${this.x(this.cursor)} x2=${this.x(this.cursor)} y1="0" y2="40"></line>`}
        </svg>
        <div class="labels">
          ${e.map(s=>{let i=this.x(s.time)/C*100,n=i>90?-100:i<10?0:-50;return d`<span style="left:${i}%;transform:translateX(${n}%)">${s.label}</span>`})}
        </div>
      </div>
    `}static{this.styles=b`
    :host {
      display: block;
      user-select: none;
      touch-action: pan-y;
    }
    .strip {
      position: relative;
      cursor: crosshair;
      padding-bottom: 16px;
    }
    svg {
      display: block;
      width: 100%;
      height: 48px;
    }
    .ground {
      fill: var(--secondary-background-color, #e5e5e5);
    }
    .recording {
      fill: var(--primary-color, #03a9f4);
    }
    .motion {
      fill: var(--warning-color, #ff9800);
    }
    .event {
      fill: var(--error-color, #db4437);
    }
    .event.kept {
      fill: var(--success-color, #43a047);
    }
    .tick {
      stroke: var(--divider-color, rgba(0, 0, 0, 0.12));
      stroke-width: 1;
      vector-effect: non-scaling-stroke;
    }
    .cursor {
      stroke: var(--primary-text-color, #212121);
      stroke-width: 2;
      vector-effect: non-scaling-stroke;
    }
    .labels {
      position: absolute;
      left: 0;
      right: 0;
      bottom: 0;
      height: 16px;
      font-size: 11px;
      color: var(--secondary-text-color, #727272);
    }
    .labels span {
      position: absolute;
      white-space: nowrap;
    }
  `}};function qt(r,t){let e=new Date(r*1e3),s=new Intl.DateTimeFormat("en-US",{timeZone:t,hourCycle:"h23",year:"numeric",month:"2-digit",day:"2-digit",hour:"2-digit",minute:"2-digit",second:"2-digit"}).formatToParts(e),i=o=>Number(s.find(l=>l.type===o)?.value),n=Date.UTC(i("year"),i("month")-1,i("day"),i("hour"),i("minute"),i("second"));return Math.round((n-Math.floor(r)*1e3)/1e3)}customElements.get("pm-dvr-timeline")||customElements.define("pm-dvr-timeline",it);var z=[3600,3*3600,6*3600,12*3600,86400,3*86400,7*86400,30*86400],Mt=6*3600,Ft=3e4,Xt=150,nt=class extends u{constructor(){super(...arguments);this.entity="";this.hours=24;this.span=86400;this.viewEnd=null;this.cursor=null;this.busy=!1;this.previewAt=0;this.loaded=""}static{this.properties={hass:{attribute:!1},entity:{type:String},hours:{type:Number},span:{state:!0},viewEnd:{state:!0},timeline:{state:!0},playback:{state:!0},cursor:{state:!0},preview:{state:!0},message:{state:!0},exported:{state:!0},busy:{state:!0}}}connectedCallback(){super.connectedCallback(),this.timer=window.setInterval(()=>{this.viewEnd===null&&this.load()},Ft)}disconnectedCallback(){super.disconnectedCallback(),window.clearInterval(this.timer)}willUpdate(e){e.has("hours")&&(this.span=z.find(i=>i>=this.hours*3600)??z.at(-1)),this.live&&this.hass&&(this.live.hass=this.hass);let s=`${this.entity}|${this.span}|${this.viewEnd}`;this.hass&&this.entity&&s!==this.loaded&&(this.loaded=s,this.load()),this.hass&&this.entity&&!this.live&&this.makeLive()}get range(){let e=this.viewEnd??Date.now()/1e3;return[e-this.span,e]}t(e,s){return v(this.hass,e,s)}async load(){let[e,s]=this.range;try{this.timeline=await this.hass.callWS({type:"pm_dvr/timeline",entity_id:this.entity,start:e,end:s})}catch(i){this.message=rt(i)}}async makeLive(){let e=await window.loadCardHelpers?.();!e||this.live||(this.live=e.createCardElement({type:"picture-entity",entity:this.entity,camera_view:"live",show_name:!1,show_state:!1}),this.live.hass=this.hass,this.requestUpdate())}async play(e){this.message=void 0;try{this.playback=await this.hass.callWS({type:"pm_dvr/playback",entity_id:this.entity,time:e}),this.cursor=Math.max(e,this.playback.start)}catch(s){this.message=rt(s)}}started(e){let s=e.target,i=this.playback?this.playback.time-this.playback.start:0;i>0&&i<s.duration&&(s.currentTime=i),s.play().catch(()=>{})}progressed(e){let s=e.target;this.playback&&(this.cursor=this.playback.start+s.currentTime)}ended(e){let s=e.target;this.playback&&this.play(this.playback.start+s.duration+.01)}goLive(){this.playback=void 0,this.cursor=null,this.preview=void 0}async seek(e){let{time:s,final:i}=e.detail;if(this.cursor=s,i){this.preview=void 0,await this.play(s);return}let n=Date.now();if(!(n-this.previewAt<Xt)){this.previewAt=n;try{let{url:o}=await this.hass.callWS({type:"pm_dvr/thumbnail",entity_id:this.entity,time:s});this.preview=o}catch{this.preview=void 0}}}zoom(e){let s=Math.min(z.length-1,Math.max(0,z.indexOf(this.span)+e)),[i,n]=this.range,o=this.cursor??(i+n)/2;this.span=z[s],this.moveTo(o+this.span/2)}pan(e){this.moveTo(this.range[1]+e*this.span/2)}moveTo(e){this.viewEnd=e>=Date.now()/1e3?null:e}get persistentSwitch(){let e=this.hass?.entities?.[this.entity]?.device_id;if(e)return Object.values(this.hass.entities).find(s=>s.device_id===e&&s.platform==="pm_dvr"&&s.translation_key==="persistent_recording")?.entity_id}async act(e){this.busy=!0,this.message=void 0;try{await e()}catch(s){this.message=rt(s)}finally{this.busy=!1}}capture(){return this.act(async()=>{await this.hass.callService("pm_dvr","capture_event",{entity_id:this.entity}),this.message=this.t("camera.captured"),await this.load()})}persistent(e){let s=this.persistentSwitch;return this.act(async()=>{await this.hass.callService("switch",e?"turn_on":"turn_off",{entity_id:s})})}exportRange(){let[e,s]=this.range;return this.act(async()=>{this.exported=void 0,this.message=this.t("camera.exporting");let i=await this.hass.callWS({type:"call_service",domain:"pm_dvr",service:"export",service_data:{entity_id:this.entity,start:e,end:s},return_response:!0}),n=i.response.path.split("/").at(-1)??"";this.exported={url:i.response.url,name:n},this.message=this.t("camera.exported",{name:n})})}when(e){let s=this.hass?.locale?.time_zone==="server"?this.hass.config.time_zone:void 0;return new Intl.DateTimeFormat(W(this.hass),{timeZone:s,dateStyle:"short",timeStyle:"medium"}).format(new Date(e*1e3))}renderEvent(e){return d`
      <button class="event" @click=${()=>this.play(e.start)}>
        ${e.thumbnail?d`<img src=${e.thumbnail} alt="" loading="lazy" />`:h}
        <span class="label">${e.label??e.trigger??e.id}</span>
        <span class="time">${this.when(e.start)}</span>
      </button>
    `}render(){if(!this.hass)return h;let e=this.hass.states[this.entity],[s,i]=this.range,n=[...this.timeline?.events??[]].reverse(),o=this.persistentSwitch,l=o?this.hass.states[o]?.state==="on":!1,a=this.hass.locale?.time_zone==="server"?this.hass.config.time_zone:void 0;return d`
      <div class="head">
        <span class="name">${e?.attributes.friendly_name??this.entity}</span>
        ${this.playback?d`<span class="mode">${this.t("camera.playing",{time:this.when(this.cursor??this.playback.time)})}</span>
              <button class="live" @click=${this.goLive}>${this.t("camera.live")}</button>`:d`<span class="mode live-badge">${this.t("camera.live")}</span>`}
      </div>
      <div class="view">
        ${this.playback?d`<video
              src=${this.playback.url}
              muted
              playsinline
              controls
              @loadedmetadata=${this.started}
              @timeupdate=${this.progressed}
              @ended=${this.ended}
            ></video>`:this.live??h}
        ${this.preview?d`<img class="preview" src=${this.preview} alt="" />`:h}
      </div>
      <div class="controls">
        <button title=${this.t("camera.earlier")} @click=${()=>this.pan(-1)}>◀</button>
        <button title=${this.t("camera.zoom_out")} @click=${()=>this.zoom(1)}>−</button>
        <button title=${this.t("camera.zoom_in")} @click=${()=>this.zoom(-1)}>+</button>
        <button title=${this.t("camera.later")} @click=${()=>this.pan(1)}>▶</button>
        <button @click=${()=>this.moveTo(1/0)}>${this.t("camera.now")}</button>
      </div>
      <pm-dvr-timeline
        .start=${s}
        .end=${i}
        .recordings=${this.timeline?.recordings??[]}
        .motion=${this.timeline?.motion??[]}
        .events=${this.timeline?.events??[]}
        .cursor=${this.cursor}
        .timeZone=${a}
        .locale=${W(this.hass)}
        @pm-dvr-seek=${this.seek}
      ></pm-dvr-timeline>
      <div class="actions">
        <button class="capture" ?disabled=${this.busy} @click=${this.capture}>${this.t("camera.capture")}</button>
        ${o?d`<button class="persistent" ?disabled=${this.busy} @click=${()=>this.persistent(!l)}>
              ${this.t(l?"camera.persistent_off":"camera.persistent_on")}
            </button>`:h}
        <button
          class="export"
          ?disabled=${this.busy||this.span>Mt}
          title=${this.span>Mt?this.t("camera.export_too_long"):""}
          @click=${this.exportRange}
        >
          ${this.t("camera.export")}
        </button>
        ${this.exported?d`<a class="download" href=${this.exported.url} download=${this.exported.name}>${this.t("camera.download")}</a>`:h}
      </div>
      ${this.message?d`<div class="message">${this.message}</div>`:h}
      <div class="events">
        <div class="title">${this.t("camera.events")}</div>
        ${n.length?d`<div class="list">${n.map(p=>this.renderEvent(p))}</div>`:d`<div class="empty">${this.t("camera.no_events")}</div>`}
      </div>
    `}static{this.styles=b`
    :host {
      display: block;
      color: var(--primary-text-color);
    }
    .head {
      display: flex;
      align-items: center;
      gap: 8px;
      padding: 8px 0;
    }
    .name {
      font-weight: 500;
      flex: 1;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .mode {
      font-size: 12px;
      color: var(--secondary-text-color);
    }
    .live-badge {
      color: var(--error-color, #db4437);
      font-weight: 500;
    }
    .view {
      position: relative;
      background: #000;
      aspect-ratio: 16 / 9;
      overflow: hidden;
      border-radius: var(--ha-card-border-radius, 12px);
    }
    .view > * {
      width: 100%;
      height: 100%;
    }
    video {
      display: block;
      object-fit: contain;
    }
    .preview {
      position: absolute;
      inset: 0;
      object-fit: contain;
      background: #000;
    }
    .controls,
    .actions {
      display: flex;
      flex-wrap: wrap;
      gap: 6px;
      padding: 8px 0;
    }
    button,
    .download {
      font: inherit;
      font-size: 13px;
      padding: 6px 10px;
      border-radius: 8px;
      border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
      background: var(--secondary-background-color, #f5f5f5);
      color: var(--primary-text-color);
      cursor: pointer;
      text-decoration: none;
    }
    button:disabled {
      opacity: 0.5;
      cursor: default;
    }
    .message {
      font-size: 13px;
      color: var(--secondary-text-color);
      padding-bottom: 8px;
    }
    .events .title {
      font-weight: 500;
      padding: 4px 0;
    }
    .list {
      display: flex;
      gap: 8px;
      overflow-x: auto;
      padding-bottom: 8px;
    }
    .event {
      display: flex;
      flex-direction: column;
      align-items: flex-start;
      min-width: 128px;
      max-width: 128px;
      padding: 4px;
      text-align: left;
    }
    .event img {
      width: 120px;
      height: 68px;
      object-fit: cover;
      border-radius: 4px;
    }
    .event .label,
    .event .time {
      font-size: 12px;
      max-width: 120px;
      overflow: hidden;
      text-overflow: ellipsis;
      white-space: nowrap;
    }
    .event .time,
    .empty {
      color: var(--secondary-text-color);
      font-size: 12px;
    }
  `}};function rt(r){return r&&typeof r=="object"&&"message"in r?String(r.message):String(r)}customElements.get("pm-dvr-camera")||customElements.define("pm-dvr-camera",nt);var Jt=[{name:"cameras",selector:{entity:{multiple:!0,filter:{integration:"pm_dvr",domain:"camera"}}}},{name:"title",selector:{text:{}}},{name:"hours",selector:{number:{min:1,max:720,mode:"box",unit_of_measurement:"h"}}},{name:"columns",selector:{number:{min:1,max:4,mode:"box"}}}],ot=class extends u{static{this.properties={hass:{attribute:!1},config:{state:!0}}}setConfig(t){let{camera:e,...s}=t;this.config={...s,cameras:t.cameras??(e?[e]:[])}}changed(t){this.config=t.detail.value,this.dispatchEvent(new CustomEvent("config-changed",{detail:{config:this.config},bubbles:!0,composed:!0}))}render(){return!this.hass||!this.config?h:d`<ha-form
      .hass=${this.hass}
      .data=${this.config}
      .schema=${Jt}
      .computeLabel=${t=>v(this.hass,`editor.${t.name}`)}
      @value-changed=${this.changed}
    ></ha-form>`}};customElements.get("pm-dvr-card-editor")||customElements.define("pm-dvr-card-editor",ot);var at=class extends u{static{this.properties={hass:{attribute:!1},config:{state:!0}}}setConfig(t){let e=t.cameras??(t.camera?[t.camera]:[]);if(!Array.isArray(e)||e.some(s=>typeof s!="string"))throw new Error("cameras must be a list of camera entities");this.config={...t,type:t.type??"custom:pm-dvr-card",cameras:e}}static getConfigElement(){return document.createElement("pm-dvr-card-editor")}static getStubConfig(t){let e=Object.values(t.entities??{}).find(s=>s.platform==="pm_dvr"&&s.entity_id.startsWith("camera."));return{cameras:e?[e.entity_id]:[],hours:24}}getCardSize(){return 9*Math.ceil((this.config?.cameras.length??1)/(this.config?.columns??1))}getGridOptions(){return{columns:12,min_columns:6,rows:"auto"}}render(){if(!this.config||!this.hass)return h;let t=this.config.cameras,e=Math.max(1,Math.min(this.config.columns??1,t.length||1)),s=t.filter(i=>!this.hass.states[i]);return d`
      <ha-card .header=${this.config.title}>
        <div class="grid" style="--pm-dvr-columns:${e}">
          ${t.length?t.filter(i=>this.hass.states[i]).map(i=>d`<pm-dvr-camera
                    .hass=${this.hass}
                    .entity=${i}
                    .hours=${this.config.hours??24}
                  ></pm-dvr-camera>`):d`<div class="note">${v(this.hass,"card.no_camera")}</div>`}
          ${s.map(i=>d`<div class="note">${v(this.hass,"card.unknown_camera",{entity:i})}</div>`)}
        </div>
      </ha-card>
    `}static{this.styles=b`
    .grid {
      display: grid;
      grid-template-columns: repeat(var(--pm-dvr-columns), minmax(0, 1fr));
      gap: 16px;
      padding: 0 16px 8px;
    }
    @media (max-width: 700px) {
      .grid {
        grid-template-columns: minmax(0, 1fr);
      }
    }
    .note {
      padding: 16px 0;
      color: var(--secondary-text-color);
    }
  `}};customElements.get("pm-dvr-card")||customElements.define("pm-dvr-card",at);window.customCards=window.customCards??[];window.customCards.some(r=>r.type==="pm-dvr-card")||window.customCards.push({type:"pm-dvr-card",name:v(void 0,"card.name"),description:v(void 0,"card.description"),preview:!1});export{at as PmDvrCard};
